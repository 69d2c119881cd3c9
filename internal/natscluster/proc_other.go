//go:build !unix

package natscluster

// processAlive can't tell on this platform, so it answers true: leftovers
// are then never removed automatically (remove them with docker rm).
func processAlive(int) bool { return true }
