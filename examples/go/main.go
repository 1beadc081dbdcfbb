// Command products is a small net/http service with nearcache in front of
// its database: GET /products/{id} reads through the cache with Fetch (one
// database load per cold product across every process and host), PUT
// /products/{id} writes the database, then invalidates the key; a bulk
// price change (POST /reprice) bumps the namespace. The database here is
// an in-memory table that counts its loads and takes 20 ms per read.
//
//	NEARCACHE_URL=ipc://$PWD/.run/nearcached.sock go run . -addr :8080
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"log"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	nearcache "github.com/nearcache/nearcache/client/go"
)

// Product is one row of the table.
type Product struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Price int    `json:"price"`
}

// DB is the database: a table in memory with a read latency, counting
// every load.
type DB struct {
	mu    sync.Mutex
	rows  map[string]Product
	Loads atomic.Int64
	Delay time.Duration
}

// NewDB returns an empty table.
func NewDB() *DB { return &DB{rows: map[string]Product{}, Delay: 20 * time.Millisecond} }

var errNoRow = errors.New("no such product")

// Load reads one row.
func (db *DB) Load(ctx context.Context, id string) (Product, error) {
	db.Loads.Add(1)
	select {
	case <-time.After(db.Delay):
	case <-ctx.Done():
		return Product{}, ctx.Err()
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	p, ok := db.rows[id]
	if !ok {
		return Product{}, errNoRow
	}
	return p, nil
}

// Put writes one row.
func (db *DB) Put(p Product) {
	db.mu.Lock()
	db.rows[p.ID] = p
	db.mu.Unlock()
}

// Service serves the products from the cache, and the database behind it.
type Service struct {
	Cache *nearcache.Client
	DB    *DB
}

const ns = "products"

// Handler returns the service's routes.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /products/{id}", s.get)
	mux.HandleFunc("PUT /products/{id}", s.put)
	mux.HandleFunc("POST /reprice", s.reprice)
	return mux
}

func (s *Service) get(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	body, err := s.Cache.Fetch(r.Context(), ns, id, time.Hour, func(ctx context.Context) ([]byte, error) {
		p, err := s.DB.Load(ctx, id)
		if err != nil {
			return nil, err
		}
		return json.Marshal(p)
	})
	switch {
	case errors.Is(err, errNoRow):
		http.Error(w, "no such product", http.StatusNotFound)
	case err != nil:
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
	default:
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}
}

func (s *Service) put(w http.ResponseWriter, r *http.Request) {
	var p Product
	b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err := json.Unmarshal(b, &p); err != nil || p.ID != r.PathValue("id") {
		http.Error(w, "want a product whose id is the path's", http.StatusBadRequest)
		return
	}
	s.DB.Put(p)
	// The write is committed: invalidate. A daemon that is down gets the
	// Delete when it is back (nearcache.ErrQueued), so it is not an error.
	if _, err := s.Cache.Delete(r.Context(), ns, p.ID); err != nil && !errors.Is(err, nearcache.ErrQueued) {
		log.Printf("invalidating product %s: %v", p.ID, err)
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Service) reprice(w http.ResponseWriter, r *http.Request) {
	s.DB.mu.Lock()
	for id, p := range s.DB.rows {
		p.Price = p.Price * 11 / 10
		s.DB.rows[id] = p
	}
	s.DB.mu.Unlock()
	if _, err := s.Cache.Bump(r.Context(), ns); err != nil && !errors.Is(err, nearcache.ErrQueued) {
		log.Printf("bumping %s: %v", ns, err)
	}
	w.WriteHeader(http.StatusNoContent)
}

func main() {
	addr := flag.String("addr", ":8080", "listen address")
	flag.Parse()
	// "": $NEARCACHE_URL, else the packaged socket. Fail-open: with no
	// daemon the service still answers, from the database.
	cache, err := nearcache.Dial("", nearcache.WithLazyDial(), nearcache.WithFailOpen(true))
	if err != nil {
		log.Fatal(err)
	}
	defer cache.Close()
	db := NewDB()
	db.Put(Product{ID: "1", Name: "lamp", Price: 40})
	db.Put(Product{ID: "2", Name: "desk", Price: 300})
	log.Printf("serving on %s, cache %s", *addr, cache.URL())
	log.Fatal(http.ListenAndServe(*addr, (&Service{Cache: cache, DB: db}).Handler()))
}
