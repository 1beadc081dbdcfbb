package nearcache

// Dialing the daemon under the client rules (docs/protocol.md, "Client
// rules", R1): a dial fails at once, with a message that says what to do,
// when the socket is missing, refused or forbidden; the next dial is due
// after a backoff (50 ms doubling to 2 s, with jitter, reset on success),
// and calls made before then fail at once with the last dial error.

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	backoffMin = 50 * time.Millisecond
	backoffMax = 2 * time.Second
)

// resolveURL returns url, else $NEARCACHE_URL, else DefaultURL, and the
// socket path it names.
func resolveURL(url string) (string, string, error) {
	if url == "" {
		url = os.Getenv("NEARCACHE_URL")
	}
	if url == "" {
		url = DefaultURL
	}
	path, ok := strings.CutPrefix(url, "ipc://")
	if !ok || path == "" {
		return url, "", &Error{Code: InvalidArgument,
			Message: fmt.Sprintf("unsupported url %q: the Go client speaks ipc://PATH only", url)}
	}
	return url, path, nil
}

// dialError turns a failed connect to path into the error a caller sees.
func dialError(path string, err error) error {
	switch {
	case errors.Is(err, syscall.ENOENT):
		what := "the socket file does not exist"
		if _, derr := os.Stat(filepath.Dir(path)); errors.Is(derr, fs.ErrNotExist) {
			what = "the socket file does not exist, nor does its directory " + filepath.Dir(path)
		}
		return &Error{Code: Unavailable, Err: err, Message: fmt.Sprintf(
			"no daemon is listening at %s (%s); start nearcached, "+
				"or point the client at its socket with NEARCACHE_URL=ipc://PATH", path, what)}
	case errors.Is(err, syscall.ECONNREFUSED):
		return &Error{Code: Unavailable, Err: err, Message: fmt.Sprintf(
			"nobody listens on %s (a stale socket: the daemon is not running); start nearcached, "+
				"or point the client at its socket with NEARCACHE_URL=ipc://PATH", path)}
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return &Error{Code: PermissionDenied, Err: err, Message: permissionMessage(path)}
	}
	return &Error{Code: Unavailable, Err: err,
		Message: fmt.Sprintf("cannot connect to nearcached at %s: %v", path, err)}
}

// permissionMessage names the socket's owner, group and mode (or its
// directory's, when the directory is what refuses), the process's user,
// and the fix.
func permissionMessage(path string) string {
	what := path
	st, err := os.Stat(path)
	if err != nil {
		what = filepath.Dir(path)
		if st, err = os.Stat(what); err != nil {
			return fmt.Sprintf("permission denied on %s (%v); check its directory's permissions", path, err)
		}
		what = "the directory " + what + " of " + path
	}
	sys, _ := st.Sys().(*syscall.Stat_t)
	owner, group := "?", "?"
	if sys != nil {
		owner, group = strconv.Itoa(int(sys.Uid)), strconv.Itoa(int(sys.Gid))
		if u, err := user.LookupId(owner); err == nil {
			owner = u.Username
		}
		if g, err := user.LookupGroupId(group); err == nil {
			group = g.Name
		}
	}
	me := strconv.Itoa(os.Getuid())
	if u, err := user.Current(); err == nil {
		me = u.Username
	}
	return fmt.Sprintf("permission denied on %s (%s:%s %04o); add this process's user (%s) to "+
		"group %s, or set socket_group in the daemon's config", what, owner, group,
		st.Mode().Perm(), me, group)
}

// socketID identifies the file at path now (0 when there is none), so that
// a client can dial at once when the socket changed since a failed dial.
func socketID(path string) uint64 {
	var st syscall.Stat_t
	if syscall.Stat(path, &st) != nil {
		return 0
	}
	return st.Ino ^ uint64(st.Ctim.Nano())
}

// nextBackoff returns the backoff after one of prev and the jittered wait.
func nextBackoff(prev time.Duration) (time.Duration, time.Duration) {
	b := backoffMin
	if prev > 0 {
		b = min(prev*2, backoffMax)
	}
	return b, b/2 + rand.N(b/2+1)
}
