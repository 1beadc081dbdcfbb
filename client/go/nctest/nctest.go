// Package nctest runs real redis-server and nearcached processes for tests,
// as the C and Python harnesses do: each in its own temporary directory, on
// a free loopback port or an IPC path there, killed with the test process
// (Pdeathsig) and stopped by pid. nearcached is the CMake build's:
// $NC_BUILD/daemon/nearcached, else build/ at the repository's root
// (found from the working directory upwards).
package nctest

import (
	"encoding/binary"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	_ "unsafe" // go:linkname
)

// BuildDir returns $NC_BUILD, else the build/ directory of the repository
// that holds the working directory.
func BuildDir() string {
	if d := os.Getenv("NC_BUILD"); d != "" {
		return d
	}
	dir, _ := os.Getwd()
	for d := dir; d != "/"; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "proto", "nearcache.proto")); err == nil {
			return filepath.Join(d, "build")
		}
	}
	return filepath.Join(dir, "build")
}

// DaemonBinary returns the path of nearcached; it fails the test if there
// is none.
func DaemonBinary(t testing.TB) string {
	p := filepath.Join(BuildDir(), "daemon", "nearcached")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s is missing: build the C code first (see README), or set NC_BUILD", p)
	}
	return p
}

// FreePort returns a free loopback TCP port.
func FreePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// WaitFor polls cond every 10 ms; it fails the test after timeout.
func WaitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	end := time.Now().Add(timeout)
	for time.Now().Before(end) {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func startProc(t testing.TB, log, name string, args ...string) (*exec.Cmd, chan struct{}) {
	f, err := os.Create(log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	return cmd, done
}

// Redis is a redis-server on a free loopback port.
type Redis struct {
	Port int
	Dir  string
	cmd  *exec.Cmd
	done chan struct{}
}

// StartRedis starts a redis-server that the test's cleanup kills.
func StartRedis(t testing.TB) *Redis {
	r := &Redis{Port: FreePort(t), Dir: t.TempDir()}
	r.start(t)
	t.Cleanup(r.Kill)
	return r
}

// Restart kills it and starts it again, empty, on the same port.
func (r *Redis) Restart(t testing.TB) {
	r.Kill()
	r.start(t)
}

func (r *Redis) start(t testing.TB) {
	r.cmd, r.done = startProc(t, filepath.Join(r.Dir, "redis.log"), "redis-server", "--port",
		strconv.Itoa(r.Port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", r.Dir,
		"--daemonize", "no")
	WaitFor(t, "redis-server to answer PING", 10*time.Second, func() bool { return r.CLI("PING") == "PONG" })
}

// URL returns redis://127.0.0.1:PORT.
func (r *Redis) URL() string { return "redis://127.0.0.1:" + strconv.Itoa(r.Port) }

// CLI runs one command through redis-cli and returns its output, trimmed.
func (r *Redis) CLI(args ...string) string {
	out, _ := exec.Command("redis-cli", append([]string{"-h", "127.0.0.1", "-p", strconv.Itoa(r.Port)},
		args...)...).Output()
	return strings.TrimSpace(string(out))
}

// Kill stops it with SIGKILL and waits.
func (r *Redis) Kill() {
	if r.cmd != nil {
		_ = r.cmd.Process.Kill()
		<-r.done
		r.cmd = nil
	}
}

// Daemon is a nearcached on ipc://DIR/nc.sock.
type Daemon struct {
	Redis *Redis // nil: a Redis that is never there
	Flags []string
	Dir   string
	Sock  string
	URL   string
	cmd   *exec.Cmd
	done  chan struct{}
}

// NewDaemon returns a daemon in dir (a temporary one when "") that is not
// started yet; the test's cleanup kills it.
func NewDaemon(t testing.TB, r *Redis, dir string, flags ...string) *Daemon {
	if dir == "" {
		dir = t.TempDir()
	}
	d := &Daemon{Redis: r, Flags: flags, Dir: dir, Sock: filepath.Join(dir, "nc.sock")}
	d.URL = "ipc://" + d.Sock
	t.Cleanup(d.Kill)
	return d
}

// StartDaemon starts a nearcached against r, with the harness's generous
// timeouts and any extra flags, and waits until its ring says it serves.
func StartDaemon(t testing.TB, r *Redis, flags ...string) *Daemon {
	d := NewDaemon(t, r, "", flags...)
	d.Start(t)
	return d
}

// Start starts it and waits until it is ready: its ring serving with a
// Redis that runs, its socket answering without one (or with a killed one).
func (d *Daemon) Start(t testing.TB) {
	redis := "redis://127.0.0.1:1"
	if d.Redis != nil {
		redis = d.Redis.URL()
	}
	args := append([]string{"--listen", d.URL, "--redis", redis, "--log-level", "debug",
		"--redis-timeout", "2s", "--request-timeout", "5s"}, d.Flags...)
	d.cmd, d.done = startProc(t, filepath.Join(d.Dir, "nearcached.log"), DaemonBinary(t), args...)
	WaitFor(t, "nearcached to get ready", 10*time.Second, func() bool {
		select {
		case <-d.done:
			log, _ := os.ReadFile(filepath.Join(d.Dir, "nearcached.log"))
			t.Fatalf("nearcached exited at start:\n%s", log)
		default:
		}
		if d.Redis == nil || d.Redis.cmd == nil {
			c, err := net.Dial("unix", d.Sock)
			if err == nil {
				c.Close()
			}
			return err == nil
		}
		return d.RingServing()
	})
}

//go:linkname nanotime runtime.nanotime
func nanotime() int64

// RingServing reports whether the daemon's ring file has an epoch and a
// serving_until not past (its L1 serves, so near tiers may).
func (d *Daemon) RingServing() bool {
	f, err := os.Open(d.Sock + ".ring")
	if err != nil {
		return false
	}
	defer f.Close()
	var h [192]byte
	if _, err := f.ReadAt(h[:], 0); err != nil {
		return false
	}
	until := int64(binary.LittleEndian.Uint64(h[128:]))
	return binary.LittleEndian.Uint64(h[24:]) != 0 && until >= nanotime()/1e6
}

// Stop sends SIGTERM and waits for it to exit.
func (d *Daemon) Stop() {
	if d.cmd != nil {
		_ = d.cmd.Process.Signal(syscall.SIGTERM)
		<-d.done
		d.cmd = nil
	}
}

// Kill stops it with SIGKILL and waits.
func (d *Daemon) Kill() {
	if d.cmd != nil {
		_ = d.cmd.Process.Kill()
		<-d.done
		d.cmd = nil
	}
}
