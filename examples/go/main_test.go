package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	nearcache "github.com/nearcache/nearcache/client/go"
	"github.com/nearcache/nearcache/client/go/nctest"
)

// Two instances of the service, each on its own daemon (two hosts), over
// one database and one Redis.
func twoServices(t *testing.T) (*DB, []*httptest.Server) {
	r := nctest.StartRedis(t)
	db := NewDB()
	var servers []*httptest.Server
	for i := 0; i < 2; i++ {
		d := nctest.StartDaemon(t, r)
		c, err := nearcache.Dial(d.URL, nearcache.WithTimeout(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		s := httptest.NewServer((&Service{Cache: c, DB: db}).Handler())
		t.Cleanup(s.Close)
		servers = append(servers, s)
	}
	return db, servers
}

func get(t *testing.T, s *httptest.Server, path string) (int, string) {
	resp, err := http.Get(s.URL + path)
	if err != nil {
		t.Error(err)
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestConcurrentRequestsForAColdProductLoadItOnce(t *testing.T) {
	db, servers := twoServices(t)
	db.Put(Product{ID: "7", Name: "chair", Price: 80})
	var wg sync.WaitGroup
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func(s *httptest.Server) {
			defer wg.Done()
			if code, body := get(t, s, "/products/7"); code != 200 || !strings.Contains(body, "chair") {
				t.Errorf("GET: %d %s", code, body)
			}
		}(servers[i%2])
	}
	wg.Wait()
	if n := db.Loads.Load(); n != 1 {
		t.Fatalf("%d database loads for one cold product", n)
	}
}

func TestAnUpdateThroughOneInstanceIsSeenByTheOther(t *testing.T) {
	db, servers := twoServices(t)
	db.Put(Product{ID: "1", Name: "lamp", Price: 40})
	for _, s := range servers {
		if code, body := get(t, s, "/products/1"); code != 200 || !strings.Contains(body, "lamp") {
			t.Fatalf("GET: %d %s", code, body)
		}
	}
	req, _ := http.NewRequest(http.MethodPut, servers[0].URL+"/products/1",
		strings.NewReader(`{"id":"1","name":"lamp","price":45}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("PUT: %v %v", resp, err)
	}
	resp.Body.Close()
	nctest.WaitFor(t, "the other instance to see the update", 2*time.Second, func() bool {
		_, body := get(t, servers[1], "/products/1")
		return strings.Contains(body, `"price":45`)
	})
	if code, _ := get(t, servers[1], "/products/404"); code != http.StatusNotFound {
		t.Fatalf("missing product: %d", code)
	}
}
