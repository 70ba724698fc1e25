package berth

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/berth-run/berth/internal/errdefs"
	"github.com/berth-run/berth/internal/network"
	"github.com/berth-run/berth/internal/oci"
	"github.com/berth-run/berth/internal/opts"
)

// netSetup is what network setup hands to the runtime.
type netSetup struct {
	// preStart runs once the init's namespaces exist, before the
	// container's process is set up (nil: nothing to do).
	preStart func(ctx context.Context, pid int) error
}

// setupNetwork prepares the container's network namespace and its
// /etc/hostname, /etc/hosts and /etc/resolv.conf, and fills cfg's network
// fields.
func (r *Runtime) setupNetwork(ctx context.Context, c *Container, cfg *oci.Config) (*netSetup, error) {
	spec := &c.rec.Spec
	dir := r.containerDir(c.rec.ID)
	mode := networkMode(spec)
	ns := &netSetup{}
	var self network.HostsEntry // the container's own address and names
	var peers []network.HostsEntry
	switch {
	case mode == "none":
		cfg.NetNS = ""
		ns.preStart = loopbackUp
	case mode == "host":
		cfg.NetNS = "host"
	case strings.HasPrefix(mode, "container:"):
		other, err := r.Container(ctx, strings.TrimPrefix(mode, "container:"))
		if err != nil {
			return nil, err
		}
		st, err := r.reconcile(ctx, other.rec.ID)
		if err != nil {
			return nil, err
		}
		if st.Status != StatusRunning && st.Status != StatusPaused {
			return nil, errdefs.New(errdefs.ErrNotRunning, fmt.Sprintf("cannot join network of a non running container: %s", other.rec.Name))
		}
		cfg.NetNS = fmt.Sprintf("/proc/%d/ns/net", st.Init.PID)
		cfg.NetNSShared = true
		// Share the other container's name files, as docker does.
		od := r.containerDir(other.rec.ID)
		cfg.HostsPath = filepath.Join(od, "hosts")
		cfg.ResolvConfPath = filepath.Join(od, "resolv.conf")
		cfg.HostnamePath = filepath.Join(od, "hostname")
		return ns, nil
	default:
		return nil, errdefs.New(errdefs.ErrNotSupported, fmt.Sprintf("network %q: bridge networking is not available yet; use --network none or host", mode))
	}
	hostname := spec.Hostname
	if hostname == "" {
		if mode == "host" {
			hostname, _ = os.Hostname()
		} else {
			hostname = c.rec.ID[:12]
		}
	}
	if err := r.writeNameFiles(dir, hostname, spec, mode == "host", self, peers, cfg); err != nil {
		return nil, err
	}
	return ns, nil
}

// writeNameFiles writes the container's hostname, hosts and resolv.conf
// files and points cfg at them. self is the container's own address
// entry (invalid in modes none and host).
func (r *Runtime) writeNameFiles(dir, hostname string, spec *Spec, hostNet bool, self network.HostsEntry, peers []network.HostsEntry, cfg *oci.Config) error {
	var hosts []byte
	extra := peers
	for _, h := range spec.ExtraHosts {
		eh, err := opts.ParseExtraHost(h)
		if err != nil {
			return err
		}
		addr, err := netip.ParseAddr(eh.IP)
		if err != nil {
			return errdefs.Wrap(errdefs.ErrInvalid, fmt.Sprintf("invalid --add-host %q", h), err)
		}
		extra = append(extra, network.HostsEntry{Addr: addr, Names: []string{eh.Host}})
	}
	if hostNet {
		hosts, _ = os.ReadFile("/etc/hosts")
		for _, e := range extra {
			hosts = append(hosts, []byte(e.Addr.String()+"\t"+strings.Join(e.Names, "\t")+"\n")...)
		}
	} else {
		hosts = network.HostsFile(self, extra)
	}
	resolv, _ := os.ReadFile("/etc/resolv.conf")
	if !hostNet || len(spec.DNS)+len(spec.DNSSearch)+len(spec.DNSOptions) > 0 {
		var err error
		if resolv, err = network.ResolvConf(resolv, spec.DNS, spec.DNSSearch, spec.DNSOptions); err != nil {
			return err
		}
	}
	files := map[string][]byte{"hostname": []byte(hostname + "\n"), "hosts": hosts, "resolv.conf": resolv}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o644); err != nil {
			return fmt.Errorf("container %s: %w", name, err)
		}
	}
	cfg.HostsPath = filepath.Join(dir, "hosts")
	cfg.ResolvConfPath = filepath.Join(dir, "resolv.conf")
	cfg.HostnamePath = filepath.Join(dir, "hostname")
	if cfg.Hostname == "" && !hostNet {
		cfg.Hostname = hostname
	}
	return nil
}

// teardownNetwork releases what setupNetwork made. Idempotent.
func (r *Runtime) teardownNetwork(ctx context.Context, c *Container) {}

// loopbackUp brings up lo in the network namespace of process pid (the
// init of a container with --network none, whose namespace clone made).
func loopbackUp(_ context.Context, pid int) error {
	h, err := netns.GetFromPid(pid)
	if err != nil {
		return fmt.Errorf("network namespace of %d: %w", pid, err)
	}
	defer h.Close()
	nl, err := netlink.NewHandleAt(h)
	if err != nil {
		return fmt.Errorf("netlink in container: %w", err)
	}
	defer nl.Close()
	lo, err := nl.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("container lo: %w", err)
	}
	if err := nl.LinkSetUp(lo); err != nil {
		return fmt.Errorf("container lo up: %w", err)
	}
	return nil
}
