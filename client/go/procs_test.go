package nearcache

// Real redis-server and nearcached processes for the tests, as the C and
// Python harnesses run them: each in its own temporary directory, on a free
// loopback port or an IPC path there, killed with the test process
// (Pdeathsig), and stopped by pid. nearcached is the CMake build's:
// $NC_BUILD/daemon/nearcached, else build/ at the repository's root.

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func buildDir() string {
	if d := os.Getenv("NC_BUILD"); d != "" {
		return d
	}
	abs, _ := filepath.Abs("../../build")
	return abs
}

func daemonBinary(t testing.TB) string {
	p := filepath.Join(buildDir(), "daemon", "nearcached")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s is missing: build the C code first (see README), or set NC_BUILD", p)
	}
	return p
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func waitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
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

func startProc(t testing.TB, log string, name string, args ...string) *exec.Cmd {
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
	return cmd
}

type redisProc struct {
	port int
	dir  string
	cmd  *exec.Cmd
}

func startRedis(t testing.TB) *redisProc {
	r := &redisProc{port: freePort(t), dir: t.TempDir()}
	r.start(t)
	t.Cleanup(r.stop)
	return r
}

func (r *redisProc) start(t testing.TB) {
	r.cmd = startProc(t, filepath.Join(r.dir, "redis.log"), "redis-server", "--port", strconv.Itoa(r.port),
		"--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", r.dir, "--daemonize", "no")
	waitFor(t, "redis-server to answer PING", 10*time.Second, func() bool { return r.cli("PING") == "PONG" })
}

func (r *redisProc) url() string { return "redis://127.0.0.1:" + strconv.Itoa(r.port) }

// cli runs one command through redis-cli and returns its output, trimmed.
func (r *redisProc) cli(args ...string) string {
	out, _ := exec.Command("redis-cli", append([]string{"-h", "127.0.0.1", "-p", strconv.Itoa(r.port)},
		args...)...).Output()
	return strings.TrimSpace(string(out))
}

func (r *redisProc) stop() {
	if r.cmd != nil {
		_ = r.cmd.Process.Kill()
		_ = r.cmd.Wait()
		r.cmd = nil
	}
}

type daemonProc struct {
	redis *redisProc
	flags []string
	dir   string
	url   string
	sock  string
	cmd   *exec.Cmd
	done  chan struct{}
}

// startDaemon starts a nearcached against r with the harness's generous
// timeouts and any extra flags, and waits until it serves L1.
func startDaemon(t testing.TB, r *redisProc, flags ...string) *daemonProc {
	d := &daemonProc{redis: r, flags: flags, dir: t.TempDir()}
	d.sock = filepath.Join(d.dir, "nc.sock")
	d.url = "ipc://" + d.sock
	d.start(t)
	t.Cleanup(d.kill)
	return d
}

func (d *daemonProc) start(t testing.TB) {
	redis := "redis://127.0.0.1:1"
	if d.redis != nil {
		redis = d.redis.url()
	}
	args := append([]string{"--listen", d.url, "--redis", redis, "--log-level", "debug",
		"--redis-timeout", "2s", "--request-timeout", "5s"}, d.flags...)
	d.cmd = startProc(t, filepath.Join(d.dir, "nearcached.log"), daemonBinary(t), args...)
	exited := make(chan struct{})
	d.done = exited
	go func(cmd *exec.Cmd) { _ = cmd.Wait(); close(exited) }(d.cmd)
	waitFor(t, "nearcached to get ready", 10*time.Second, func() bool {
		select {
		case <-exited:
			log, _ := os.ReadFile(filepath.Join(d.dir, "nearcached.log"))
			t.Fatalf("nearcached exited at start:\n%s", log)
		default:
		}
		c, err := Dial(d.url, WithNearBytes(0), WithTimeout(500*time.Millisecond))
		if err != nil {
			return false
		}
		defer c.Close()
		p, err := c.Ping(context.Background())
		return err == nil && (p.L1Serving || d.redis == nil)
	})
	if d.redis != nil { // and until its ring says it serves (a heartbeat later)
		waitFor(t, "the daemon's ring to serve", 10*time.Second, func() bool {
			r, err := openRing(d.sock + ".ring")
			return err == nil && r.epoch() != 0 && r.until() >= nowMS()
		})
	}
}

// stop sends SIGTERM and waits.
func (d *daemonProc) stop() {
	if d.cmd != nil {
		_ = d.cmd.Process.Signal(syscall.SIGTERM)
		<-d.done
		d.cmd = nil
	}
}

func (d *daemonProc) kill() {
	if d.cmd != nil {
		_ = d.cmd.Process.Kill()
		<-d.done
		d.cmd = nil
	}
}

// dial opens a client of d that the test closes.
func (d *daemonProc) dial(t testing.TB, opts ...Option) *Client {
	t.Helper()
	c, err := Dial(d.url, append([]Option{WithTimeout(5 * time.Second)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
