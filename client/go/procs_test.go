package nearcache

import (
	"testing"
	"time"

	"github.com/nearcache/nearcache/client/go/nctest"
)

var (
	startRedis  = nctest.StartRedis
	startDaemon = nctest.StartDaemon
	waitFor     = nctest.WaitFor
)

// dial opens a client of d that the test closes.
func dial(t testing.TB, d *nctest.Daemon, opts ...Option) *Client {
	t.Helper()
	c, err := Dial(d.URL, append([]Option{WithTimeout(5 * time.Second)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
