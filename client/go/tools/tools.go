//go:build tools

// Package tools pins the code generator's version in go.mod.
package tools

import _ "google.golang.org/protobuf/cmd/protoc-gen-go"
