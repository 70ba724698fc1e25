// Package berth is Docker as a Go library: a daemonless container engine.
//
// A Go program imports berth to pull images from any OCI registry, run
// containers with Linux namespaces, cgroups, overlayfs and bridge
// networking, exec into them, commit, export, push and remove them — with no
// daemon, no cgo and nothing to wire into main.
//
//	rt, err := berth.Open(ctx)
//	ctr, err := rt.Run(ctx, berth.Spec{Image: "busybox", Cmd: []string{"echo", "hi"}})
//	status, err := ctr.Wait(ctx)
package berth
