module github.com/nearcache/nearcache/examples/go

go 1.24

require github.com/nearcache/nearcache/client/go v0.0.0

require google.golang.org/protobuf v1.36.12 // indirect

replace github.com/nearcache/nearcache/client/go => ../../client/go
