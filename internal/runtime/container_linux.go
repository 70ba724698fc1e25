package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-run/berth/internal/errdefs"
	"github.com/berth-run/berth/internal/seccomp"
)

// containerSys is the Linux part of a Container.
type containerSys struct {
	forker *forker
	sock   *syncSocket // parent end, until Start learns the exec happened; guarded by mu
}

func create(ctx context.Context, opts CreateOpts) (_ *Container, retErr error) {
	spec, bundle, rootfs, err := prepareCreate(&opts)
	if err != nil {
		return nil, err
	}
	clone, joins, newCgroupNS, userNS, err := namespacePlan(spec)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(opts.StateDir), 0o711); err != nil {
		return nil, err
	}
	if err := os.Mkdir(opts.StateDir, 0o711); err != nil {
		if errors.Is(err, os.ErrExist) {
			if _, serr := os.Stat(filepath.Join(opts.StateDir, stateFile)); serr == nil {
				return nil, errdefs.New(errdefs.ErrConflict, fmt.Sprintf("container %q exists", opts.ID))
			}
		} else {
			return nil, fmt.Errorf("state dir: %w", err)
		}
	}
	cleanup := []func(){func() { os.RemoveAll(opts.StateDir) }}
	defer func() {
		if retErr != nil {
			for i := len(cleanup) - 1; i >= 0; i-- {
				cleanup[i]()
			}
		}
	}()

	startSock, err := listenStart(opts.StateDir)
	if err != nil {
		return nil, err
	}
	defer startSock.Close()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socketpair: %w", err)
	}
	parentSock := newSyncSocket(os.NewFile(uintptr(fds[0]), "sync-parent"))
	childSock := os.NewFile(uintptr(fds[1]), "sync-child")
	defer childSock.Close()
	cleanup = append(cleanup, func() { parentSock.close() })

	stdio, closeStdio, err := stdioFiles(opts.Stdin, opts.Stdout, opts.Stderr)
	if err != nil {
		return nil, err
	}
	defer closeStdio()
	files := append(stdio, opts.ExtraFiles...)
	sockFd := len(files)
	files = append(files, childSock, startSock)
	var pdeath syscall.Signal
	if opts.TieToParent {
		pdeath = syscall.SIGKILL
	}
	// The cgroup is made before the fork, so that moving the init into
	// it can start at once: a cgroup v1 move waits out an RCU grace
	// period (1-10 ms on a busy machine), which then passes while the
	// child's Go runtime boots and this process compiles the filter.
	cgPath := opts.CgroupPath
	if spec.Linux != nil && spec.Linux.CgroupsPath != "" {
		cgPath = spec.Linux.CgroupsPath
	}
	if cgPath == "" {
		cgPath = "berth/" + opts.ID
	}
	cg, err := cgroupFactory(opts.Cgroups)(cgPath)
	if err != nil {
		return nil, err
	}
	if cg != nil {
		var res *specs.LinuxResources
		if spec.Linux != nil {
			res = withDefaultDevices(spec.Linux.Resources, spec.Linux.Devices)
		}
		if err := cg.Create(res); err != nil {
			return nil, err // the cgroup package names the cgroup
		}
		cleanup = append(cleanup, func() { _ = cg.Delete() })
	} else {
		cgPath = ""
	}
	attr := &os.ProcAttr{
		// The death signal travels in the marker: the stage sets it
		// itself (Go's SysProcAttr.Pdeathsig kills a child born in a
		// joined pid namespace, where getppid() is 0).
		Env:   []string{stageEnv + "=" + stageInit + "," + strconv.Itoa(sockFd) + "," + strconv.Itoa(int(pdeath))},
		Files: files,
		Sys:   sysProcAttr(spec, clone, userNS),
	}
	proc, fk, err := startProcess(joins, nil, opts.TieToParent, "/proc/self/exe", []string{"berth-init", opts.ID}, attr)
	if err != nil {
		return nil, fmt.Errorf("start init: %w", err)
	}
	childSock.Close()
	c := &Container{proc: proc, exited: make(chan struct{}), sys: containerSys{forker: fk, sock: parentSock}, cg: cg}
	// How the init gets into its cgroup. On cgroup v1 it moves its own
	// thread (the one that executes the process) first thing once it has
	// its config (joinOwnThread), which spares the RCU grace period that
	// moving another process costs. Otherwise (v2, a manager that cannot
	// tell its directories, or an init in a user namespace of its own,
	// which may not write the host's cgroup files) this process moves it,
	// in the background while the child boots; every return from here
	// waits for that (a failed create deletes the cgroup).
	var cgDirs []cgroupHierarchy
	var cgTasks []string
	cgKnown := false
	if cg != nil {
		cgDirs, cgTasks, cgKnown = targetHierarchies(cg)
	}
	if userNS {
		cgTasks = nil
	}
	added := make(chan error, 1)
	if cg != nil && len(cgTasks) == 0 {
		go func() { added <- cg.Add(proc.Pid) }()
	} else {
		added <- nil
	}
	addErr := sync.OnceValue(func() error {
		if err := <-added; err != nil {
			return fmt.Errorf("add init to its cgroup: %w", err)
		}
		return nil
	})
	cleanup = append(cleanup, func() {
		_ = addErr()
		_ = proc.Kill()
		_, _ = c.Wait()
	})
	stop := context.AfterFunc(ctx, func() { _ = proc.Kill() })
	defer stop()

	// The child is booting (the Go runtime's start takes a few ms):
	// meanwhile compile the filter.
	var prog *seccomp.Program
	if spec.Linux != nil && spec.Linux.Seccomp != nil {
		if prog, err = seccomp.Compile(spec.Linux.Seccomp); err != nil {
			return nil, err
		}
	}
	if opts.PreStart != nil {
		if err := opts.PreStart(ctx, proc.Pid); err != nil {
			return nil, err
		}
	}
	// Moved by this process, the init's own set-up (mounts, /dev) may run
	// before it is in its cgroup, given the cgroups it mounts; what
	// belongs to the container may not: a cgroup namespace is made of
	// the init's cgroup, and hooks see the container's cgroups (and their
	// processes must be in them). The user's process is executed after
	// Create returns, by when the move is done.
	if len(cgTasks) == 0 && (!cgKnown || newCgroupNS || spec.Hooks != nil) {
		if err := addErr(); err != nil {
			return nil, err
		}
	}
	childSpec := *spec
	if spec.Linux != nil {
		l := *spec.Linux
		l.Seccomp = nil
		l.Resources = nil
		childSpec.Linux = &l
	}
	cfg := &stageConfig{
		Stage:       stageInit,
		ID:          opts.ID,
		Bundle:      bundle,
		Rootfs:      rootfs,
		Spec:        &childSpec,
		Process:     spec.Process,
		NoPivot:     opts.NoPivotRoot,
		NewCgroupNS: newCgroupNS,
		CgroupDirs:  cgDirs,
		CgroupTasks: cgTasks,
		UserNS:      userNS,
		Annotations: spec.Annotations,
		Pid:         proc.Pid,
		ExtraFiles:  len(opts.ExtraFiles),
		Pdeathsig:   int(pdeath),
	}
	if prog != nil {
		cfg.Seccomp, cfg.SeccompFlags = prog.Bytes(), prog.Flags
	}
	if h := spec.Hooks; h != nil && (len(h.Prestart) > 0 || len(h.CreateRuntime) > 0) {
		cfg.ParentHooks = true
	}
	st := &State{
		State: specs.State{
			Version:     specs.Version,
			ID:          opts.ID,
			Status:      specs.ContainerState(StatusCreating),
			Pid:         proc.Pid,
			Bundle:      bundle,
			Annotations: spec.Annotations,
		},
		Created:    time.Now().UTC(),
		Rootfs:     rootfs,
		CgroupPath: cgPath,
		Config:     spec,
		StateDir:   opts.StateDir,
	}
	if cgPath != "" && !filepath.IsAbs(cgPath) {
		if own, err := os.ReadFile("/proc/self/cgroup"); err == nil {
			st.CgroupBase = string(own)
		}
	}
	c.state = st
	if err := parentSock.send(&message{Type: msgConfig, Config: cfg}); err != nil {
		return nil, c.childError(err)
	}
	// The state is written while the init sets up (Load reports
	// "created" only once the init is alive, which it is until create
	// fails and removes the state dir).
	if st.StartTime, err = processStartTime(proc.Pid); err != nil {
		return nil, c.childError(err)
	}
	st.Status = specs.ContainerState(StatusCreated)
	if err := writeState(st); err != nil {
		return nil, err
	}
	// state.json keeps the whole spec (exec compiles the filter from
	// it); the Container, which may live as long as the container,
	// keeps it without its seccomp profile: docker's default is most of
	// a spec's size, and the init has it compiled already.
	if spec.Linux != nil && spec.Linux.Seccomp != nil {
		kept, l := *spec, *spec.Linux
		l.Seccomp = nil
		kept.Linux = &l
		st.Config = &kept
	}
	if err := c.awaitReady(ctx, &opts); err != nil {
		return nil, err
	}
	if err := addErr(); err != nil {
		return nil, err
	}
	if opts.PidFile != "" {
		if err := atomicWrite(opts.PidFile, []byte(strconv.Itoa(proc.Pid))); err != nil {
			return nil, fmt.Errorf("pid file: %w", err)
		}
	}
	return c, nil
}

// awaitReady serves the init's requests until it reports ready.
func (c *Container) awaitReady(ctx context.Context, opts *CreateOpts) error {
	for {
		m, f, err := c.sys.sock.recv()
		if err != nil {
			return c.childError(err)
		}
		switch m.Type {
		case msgError:
			c.reapQuietly()
			return m.err()
		case msgHooks:
			h := c.state.Config.Hooks
			s := c.state.State
			err := runHooks(h.Prestart, "prestart", &s)
			if err == nil {
				err = runHooks(h.CreateRuntime, "createRuntime", &s)
			}
			reply := &message{Type: msgHooksDone}
			if err != nil {
				reply = errorMessage(err)
			}
			if serr := c.sys.sock.send(reply); serr != nil && err == nil {
				err = c.childError(serr)
			}
			if err != nil {
				return err
			}
		case msgConsole:
			if f == nil {
				return errors.New("console message without a file descriptor")
			}
			if opts.ConsoleSocket != "" {
				err := sendConsole(opts.ConsoleSocket, f)
				f.Close()
				if err != nil {
					return err
				}
			} else {
				c.console = f
			}
		case msgReady:
			return nil
		default:
			return fmt.Errorf("unexpected message %q from init", m.Type)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// childError explains a broken sync socket: usually the init died.
func (c *Container) childError(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, unix.EPIPE) || errors.Is(err, unix.ECONNRESET) {
		st, werr := c.Wait()
		if werr == nil {
			return fmt.Errorf("container init exited early (status %d)", st.Code)
		}
	}
	return fmt.Errorf("container init: %w", err)
}

func (c *Container) reapQuietly() { _, _ = c.Wait() }

// stdioFiles returns the three stdio files, /dev/null for nil ones.
func stdioFiles(in, out, errf *os.File) ([]*os.File, func(), error) {
	files := []*os.File{in, out, errf}
	var null *os.File
	for i, f := range files {
		if f != nil {
			continue
		}
		if null == nil {
			var err error
			if null, err = os.OpenFile(os.DevNull, os.O_RDWR, 0); err != nil {
				return nil, nil, err
			}
		}
		files[i] = null
	}
	return files, func() {
		if null != nil {
			null.Close()
		}
	}, nil
}

// prepareCreate validates opts and resolves the spec, bundle and rootfs.
func prepareCreate(opts *CreateOpts) (*specs.Spec, string, string, error) {
	if err := validateID(opts.ID); err != nil {
		return nil, "", "", err
	}
	if opts.StateDir == "" {
		return nil, "", "", errdefs.New(errdefs.ErrInvalid, "state dir is required")
	}
	bundle := opts.Bundle
	if bundle != "" {
		var err error
		if bundle, err = filepath.Abs(bundle); err != nil {
			return nil, "", "", err
		}
	}
	spec := opts.Spec
	if spec == nil {
		if bundle == "" {
			return nil, "", "", errdefs.New(errdefs.ErrInvalid, "a spec or a bundle is required")
		}
		var err error
		if spec, err = ReadSpec(filepath.Join(bundle, "config.json")); err != nil {
			return nil, "", "", err
		}
	}
	// A spec without process may be created (OCI); Start then fails.
	if spec.Process != nil {
		if err := checkRlimits(spec.Process.Rlimits); err != nil {
			return nil, "", "", err
		}
	}
	if spec.Process != nil && spec.Process.Capabilities != nil {
		if _, err := parseProcessCaps(spec.Process.Capabilities); err != nil {
			return nil, "", "", errdefs.Wrap(errdefs.ErrInvalid, "process capabilities", err)
		}
	}
	if spec.Linux != nil && spec.Linux.Resources != nil && spec.Linux.Resources.Network != nil {
		if err := checkNetworkCgroups(spec.Linux.Resources.Network); err != nil {
			return nil, "", "", err
		}
	}
	if spec.Root == nil || spec.Root.Path == "" {
		return nil, "", "", errdefs.New(errdefs.ErrInvalid, "spec has no root")
	}
	rootfs := spec.Root.Path
	if !filepath.IsAbs(rootfs) {
		rootfs = filepath.Join(bundle, rootfs)
	}
	real, err := filepath.EvalSymlinks(rootfs)
	if err != nil {
		return nil, "", "", errdefs.Wrap(errdefs.ErrInvalid, "rootfs", err)
	}
	if fi, err := os.Stat(real); err != nil || !fi.IsDir() {
		return nil, "", "", errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("rootfs %s is not a directory", rootfs))
	}
	return spec, bundle, real, nil
}

// ReadSpec reads an OCI config.json.
func ReadSpec(path string) (*specs.Spec, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, errdefs.Wrap(errdefs.ErrNotFound, "config", err)
		}
		return nil, err
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, errdefs.Wrap(errdefs.ErrInvalid, "parse "+path, err)
	}
	return &s, nil
}

func validateID(id string) error {
	if id == "" || id == "." || id == ".." || len(id) > 1024 {
		return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid container id %q", id))
	}
	for _, r := range id {
		if r == '/' || r == 0 {
			return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid container id %q", id))
		}
	}
	return nil
}

func (c *Container) start(ctx context.Context) error {
	c.mu.Lock()
	sock := c.sys.sock
	c.sys.sock = nil
	c.mu.Unlock()
	if sock != nil {
		sock.close()
	}
	return start(ctx, c.state)
}

func (c *Container) wait() (ExitStatus, error) {
	c.waitOnce.Do(func() {
		ps, err := c.proc.Wait()
		c.sys.forker.done()
		if err != nil {
			c.waitErr = err
		} else {
			c.exit = exitStatus(ps.Sys().(syscall.WaitStatus))
		}
		close(c.exited)
	})
	return c.exit, c.waitErr
}

func exitStatus(ws syscall.WaitStatus) ExitStatus {
	st := ExitStatus{ExitedAt: time.Now()}
	switch {
	case ws.Signaled():
		st.Signal = ws.Signal()
		st.Code = 128 + int(ws.Signal())
	default:
		st.Code = ws.ExitStatus()
	}
	return st
}

// checkNetworkCgroups refuses network limits (net_cls class id, net_prio
// priorities) on a machine without the controllers, instead of silently
// not applying them.
func checkNetworkCgroups(n *specs.LinuxNetwork) error {
	need := map[string]bool{}
	if n.ClassID != nil {
		need["net_cls"] = true
	}
	if len(n.Priorities) > 0 {
		need["net_prio"] = true
	}
	if len(need) == 0 {
		return nil
	}
	mounts, err := cgroupMounts()
	if err != nil {
		return err
	}
	for c := range need {
		if _, ok := mounts[c]; !ok {
			return errdefs.New(errdefs.ErrNotSupported, fmt.Sprintf("network limits need the %s cgroup controller, which is not mounted", c))
		}
	}
	return nil
}
