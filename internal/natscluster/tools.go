//go:build tools

package natscluster

// This file is never compiled. It records that the module needs
// github.com/nats-io/nats-server/v2, which image.go builds with `go build`
// at test time, so that `go mod tidy` keeps it in go.mod and go.sum.
import _ "github.com/nats-io/nats-server/v2"
