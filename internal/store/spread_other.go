//go:build !linux

package store

func spreadSubdirs(string) {}
