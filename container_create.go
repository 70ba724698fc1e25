package berth

import (
	"context"
	"debug/elf"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/berth-run/berth/internal/errdefs"
	"github.com/berth-run/berth/internal/oci"
	"github.com/berth-run/berth/internal/opts"
)

// Create creates a container from spec without starting it, as `docker
// create`. The image must be in the store (see Pull). Bad specs — an
// unknown image, a malformed option, a name in use — are refused before
// anything is written.
func (r *Runtime) Create(ctx context.Context, spec Spec) (*Container, error) {
	if spec.Image == "" {
		return nil, errdefs.New(errdefs.ErrInvalid, "create: no image given")
	}
	im, err := r.Image(ctx, spec.Image)
	if err != nil {
		return nil, err
	}
	if err := r.validateSpec(&spec, im); err != nil {
		return nil, err
	}
	rec := &containerRecord{
		ID:        newID(),
		Created:   time.Now().UTC(),
		Image:     im.rec.ID,
		ImageName: spec.Image,
		Spec:      spec,
	}
	for _, l := range im.rec.Layers {
		rec.Layers = append(rec.Layers, l.ChainID)
	}
	rec.Path, rec.Args = commandOf(spec, im)

	unlock, err := r.store.Lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	// The image may have gone while we validated.
	if _, err := r.store.GetImage(im.rec.ID); err != nil {
		return nil, err
	}
	if spec.Name != "" {
		if err := r.checkName(spec.Name); err != nil {
			return nil, err
		}
		rec.Name = spec.Name
	} else {
		for i := 0; ; i++ {
			rec.Name = randomName(i)
			if r.checkName(rec.Name) == nil {
				break
			}
		}
	}
	rec.Spec.Name = rec.Name
	volumes, err := r.planMounts(ctx, rec, im)
	if err != nil {
		return nil, err
	}
	created := false
	defer func() {
		if !created {
			r.dropVolumesLocked(ctx, volumes)
		}
	}()
	dir := r.containerDir(rec.ID)
	// The record is written last: a crash before it leaves a directory
	// without container.json, which Open removes.
	for _, d := range []string{"upper", "work", "rootfs"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("create container: %w", err)
		}
	}
	// The upper directory is the container's / (overlayfs takes the
	// root's attributes from it): 0755, as in docker, so that processes
	// of other users than root can walk the file system.
	if err := os.Chmod(filepath.Join(dir, "upper"), 0o755); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("create container: %w", err)
	}
	if err := r.writeState(rec.ID, &containerState{Status: StatusCreated}); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := r.writeRecord(rec); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	created = true
	r.event(ctx, "container", "create", rec.ID, map[string]string{"name": rec.Name, "image": spec.Image})
	return &Container{rt: r, rec: rec}, nil
}

// commandOf is the process a container of spec runs, as docker combines
// the image's entrypoint and command with the spec's.
func commandOf(spec Spec, im *Image) (string, []string) {
	cfg := im.config.Config
	entry, cmd := cfg.Entrypoint, cfg.Cmd
	if spec.Entrypoint != nil {
		entry, cmd = spec.Entrypoint, nil
		if len(entry) == 1 && entry[0] == "" {
			entry = nil
		}
	}
	if len(spec.Cmd) > 0 {
		cmd = spec.Cmd
	}
	argv := append(append([]string(nil), entry...), cmd...)
	if len(argv) == 0 {
		return "", nil
	}
	return argv[0], argv[1:]
}

// validateSpec checks spec the way the spec generator will use it, so
// that a bad option fails Create rather than Start. The user is checked
// at start, against the image's files, as in docker.
func (r *Runtime) validateSpec(spec *Spec, im *Image) error {
	if spec.Name != "" && !validName.MatchString(spec.Name) {
		return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", spec.Name))
	}
	if path, _ := commandOf(*spec, im); path == "" {
		return errdefs.New(errdefs.ErrInvalid, "no command specified")
	}
	switch spec.RestartPolicy.Name {
	case "", RestartNo, RestartAlways, RestartOnFailure, RestartUnlessStopped:
	default:
		return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid restart policy %q", spec.RestartPolicy.Name))
	}
	if spec.RestartPolicy.Name != "" && spec.RestartPolicy.Name != RestartNo && spec.AutoRemove {
		return errdefs.New(errdefs.ErrInvalid, "conflicting options: cannot specify both --restart and --rm")
	}
	if spec.RestartPolicy.MaximumRetryCount < 0 || spec.RestartPolicy.MaximumRetryCount > 0 && spec.RestartPolicy.Name != RestartOnFailure {
		return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid restart policy: maximum retry count cannot be used with restart policy '%s'", spec.RestartPolicy.Name))
	}
	if _, err := parseLogConfig(spec.LogConfig); err != nil {
		return err
	}
	if spec.StopTimeout != nil && *spec.StopTimeout < -1 {
		return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid stop timeout %d", *spec.StopTimeout))
	}
	if err := validateMounts(spec); err != nil {
		return err
	}
	for _, p := range spec.Ports {
		if p.ContainerPort == 0 {
			return errdefs.New(errdefs.ErrInvalid, "invalid port binding: container port 0")
		}
		switch p.Protocol {
		case "", "tcp", "udp", "sctp":
		default:
			return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid protocol %q", p.Protocol))
		}
	}
	if err := r.validateNetworkSpec(spec); err != nil {
		return err
	}
	cfg, err := r.ociConfig(spec, im, "/", newIDForValidation)
	if err != nil {
		return err
	}
	cfg.User, cfg.GroupAdd = "0", nil
	cfg.Image.User = ""
	_, err = oci.Generate(cfg)
	return err
}

// newIDForValidation is a well-formed ID for validating specs.
const newIDForValidation = "0000000000000000000000000000000000000000000000000000000000000000"

func validateMount(m Mount) error {
	switch m.Type {
	case MountTypeBind:
		if !filepath.IsAbs(m.Source) {
			return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid mount config: bind source path must be absolute: %q", m.Source))
		}
	case MountTypeVolume:
		if m.Source != "" {
			if err := opts.ValidateVolumeName(m.Source); err != nil {
				return err
			}
		}
	case MountTypeTmpfs:
		if m.Source != "" {
			return errdefs.New(errdefs.ErrInvalid, "invalid mount config: tmpfs mounts take no source")
		}
	default:
		return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid mount config: unknown mount type %q", m.Type))
	}
	if !filepath.IsAbs(m.Target) || filepath.Clean(m.Target) == "/" {
		return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid mount config: mount target must be an absolute path other than /: %q", m.Target))
	}
	return nil
}

// ociConfig turns a Spec into the spec generator's input for a container
// whose root filesystem is mounted at rootfs.
func (r *Runtime) ociConfig(spec *Spec, im *Image, rootfs, id string) (oci.Config, error) {
	sec, err := opts.ParseSecurityOpts(spec.SecurityOpt)
	if err != nil {
		return oci.Config{}, err
	}
	res := spec.Resources
	cfg := oci.Config{
		ID:                    id,
		Rootfs:                rootfs,
		Image:                 im.config.Config,
		Entrypoint:            spec.Entrypoint,
		EntrypointSet:         spec.Entrypoint != nil,
		Cmd:                   spec.Cmd,
		Env:                   spec.Env,
		WorkingDir:            spec.WorkingDir,
		User:                  spec.User,
		Hostname:              spec.Hostname,
		Domainname:            spec.Domainname,
		Tty:                   spec.Tty,
		OpenStdin:             spec.OpenStdin,
		Privileged:            spec.Privileged,
		ReadOnly:              spec.ReadOnly,
		NoNewPrivileges:       sec.NoNewPrivileges,
		SystemPathsUnconfined: sec.SystemPathsUnconfined,
		WritableCgroups:       sec.WritableCgroups,
		Seccomp:               sec.Seccomp,
		Init:                  spec.Init,
		CapAdd:                spec.CapAdd,
		CapDrop:               spec.CapDrop,
		Resources: oci.Resources{
			Memory:            res.Memory,
			MemorySwap:        res.MemorySwap,
			MemoryReservation: res.MemoryReservation,
			NanoCPUs:          res.NanoCPUs,
			CPUShares:         res.CPUShares,
			CPUPeriod:         res.CPUPeriod,
			CPUQuota:          res.CPUQuota,
			CpusetCpus:        res.CpusetCpus,
			CpusetMems:        res.CpusetMems,
			PidsLimit:         res.PidsLimit,
			BlkioWeight:       res.BlkioWeight,
		},
		Sysctls:     spec.Sysctls,
		ShmSize:     spec.ShmSize,
		OomScoreAdj: spec.OomScoreAdj,
		GroupAdd:    spec.GroupAdd,
		Annotations: spec.Annotations,
		StopSignal:  spec.StopSignal,
		CgroupsPath: r.cgroupPath(spec, id),
	}
	if res.OomKillDisable {
		t := true
		cfg.Resources.OomKillDisable = &t
	}
	if spec.Init {
		exe, err := initBinary()
		if err != nil {
			return cfg, err
		}
		cfg.InitPath = exe
	}
	for _, u := range spec.Ulimits {
		cfg.Ulimits = append(cfg.Ulimits, oci.Ulimit{Name: u.Name, Soft: rlimitValue(u.Soft), Hard: rlimitValue(u.Hard)})
	}
	for _, d := range spec.Devices {
		cfg.Devices = append(cfg.Devices, oci.DeviceMapping{PathOnHost: d.PathOnHost, PathInContainer: d.PathInContainer, CgroupPermissions: d.CgroupPermissions})
	}
	for _, m := range []*string{&spec.PidMode, &spec.IpcMode, &spec.UTSMode} {
		if strings.HasPrefix(*m, "container:") {
			// Resolved to a /proc path at start; validation only needs the form.
			continue
		}
		switch *m {
		case "", "host", "private", "shareable", "none":
		default:
			return cfg, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid namespace mode %q", *m))
		}
	}
	cfg.PIDMode = nsMode(spec.PidMode)
	cfg.IPCMode = nsMode(spec.IpcMode)
	cfg.UTSMode = nsMode(spec.UTSMode)
	return cfg, nil
}

// nsMode passes "host"/"" through; container:X is resolved at start.
func nsMode(m string) string {
	if strings.HasPrefix(m, "container:") {
		return ""
	}
	return m
}

func rlimitValue(v int64) uint64 {
	if v < 0 {
		return oci.RlimitInfinity
	}
	return uint64(v)
}

// cgroupPath is the container's cgroup path: the spec's parent or the
// runtime's (default "berth", below the caller's own cgroup), then the ID.
func (r *Runtime) cgroupPath(spec *Spec, id string) string {
	parent := spec.CgroupParent
	if parent == "" {
		parent = r.opts.cgroupParent
	}
	if parent == "" {
		parent = "berth"
	}
	return strings.TrimSuffix(parent, "/") + "/" + id
}

// initBinary is the program --init bind-mounts into the container as its
// PID 1: this program itself, which then acts as the reaper. It runs in
// the container's root, without the host's libraries, so it must be
// statically linked (Go builds with CGO_ENABLED=0 are). Found once: the
// binary does not change while it runs.
var initBinary = sync.OnceValues(findInitBinary)

func findInitBinary() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("--init: finding this program's binary: %w", err)
	}
	f, err := elf.Open(exe)
	if err != nil {
		return "", fmt.Errorf("--init: reading %s: %w", exe, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return "", errdefs.New(errdefs.ErrNotSupported, fmt.Sprintf("--init runs this program (%s) in the container, so it must be statically linked: build it with CGO_ENABLED=0", exe))
		}
	}
	return exe, nil
}
