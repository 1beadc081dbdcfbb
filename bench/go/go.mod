module github.com/nearcache/nearcache/bench/go

go 1.26.0

require (
	github.com/nearcache/nearcache/client/go v0.0.0
	github.com/redis/go-redis/v9 v9.24.0
	github.com/redis/rueidis v1.0.80
)

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	go.uber.org/atomic v1.12.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
)

replace github.com/nearcache/nearcache/client/go => ../../client/go
