package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-run/berth/internal/errdefs"
	"github.com/berth-run/berth/internal/seccomp"
)

// processSys is the Linux part of a Process.
type processSys struct {
	forker *forker
}

// nsFiles are the namespaces an exec joins from the parent's thread, in
// order; the mount namespace is joined by the exec stage itself (after a
// setns into the container's mount namespace, /proc/self/exe would no
// longer resolve).
var execJoinOrder = []struct {
	name string
	flag int
}{
	{"ipc", unix.CLONE_NEWIPC},
	{"uts", unix.CLONE_NEWUTS},
	{"net", unix.CLONE_NEWNET},
	{"pid", unix.CLONE_NEWPID},
	{"cgroup", unix.CLONE_NEWCGROUP},
}

func sameNamespace(pid int, name string) (bool, error) {
	var a, b unix.Stat_t
	if err := unix.Stat("/proc/self/ns/"+name, &a); err != nil {
		return false, err
	}
	if err := unix.Stat("/proc/"+strconv.Itoa(pid)+"/ns/"+name, &b); err != nil {
		return false, err
	}
	return a.Dev == b.Dev && a.Ino == b.Ino, nil
}

func execIn(ctx context.Context, s *State, proc *specs.Process, opts ExecOpts) (_ *Process, retErr error) {
	if proc == nil || len(proc.Args) == 0 {
		return nil, errdefs.New(errdefs.ErrInvalid, "exec: process args must not be empty")
	}
	if err := checkRlimits(proc.Rlimits); err != nil {
		return nil, err
	}
	if proc.Capabilities != nil {
		if _, err := parseProcessCaps(proc.Capabilities); err != nil {
			return nil, errdefs.Wrap(errdefs.ErrInvalid, "process capabilities", err)
		}
	}
	switch st := deriveStatus(s); st {
	case StatusRunning, StatusCreated:
	default:
		return nil, errdefs.New(errdefs.ErrNotRunning, fmt.Sprintf("container %q is %s", s.ID, st))
	}
	pidfd, err := s.pidfd()
	if err != nil {
		return nil, err
	}
	defer unix.Close(pidfd)
	if same, err := sameNamespace(s.Pid, "user"); err != nil {
		return nil, err
	} else if !same {
		return nil, errdefs.New(errdefs.ErrNotSupported, "exec into a container with its own user namespace is not supported")
	}
	// Namespace fds, opened now: the pid is checked against the pidfd.
	var nsfds []struct {
		fd   int
		flag int
	}
	defer func() {
		for _, n := range nsfds {
			unix.Close(n.fd)
		}
	}()
	for _, ns := range execJoinOrder {
		same, err := sameNamespace(s.Pid, ns.name)
		if err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue
			}
			return nil, err
		}
		if same {
			continue
		}
		fd, err := unix.Open("/proc/"+strconv.Itoa(s.Pid)+"/ns/"+ns.name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("open %s namespace: %w", ns.name, err)
		}
		nsfds = append(nsfds, struct{ fd, flag int }{fd, ns.flag})
	}
	mntFd, err := unix.Open("/proc/"+strconv.Itoa(s.Pid)+"/ns/mnt", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open mount namespace: %w", err)
	}
	mntFile := os.NewFile(uintptr(mntFd), "mntns")
	defer mntFile.Close()
	rootFd, err := unix.Open("/proc/"+strconv.Itoa(s.Pid)+"/root", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open container root: %w", err)
	}
	rootFile := os.NewFile(uintptr(rootFd), "root")
	defer rootFile.Close()
	if !s.alive() {
		return nil, errdefs.New(errdefs.ErrNotRunning, fmt.Sprintf("container %q is not running", s.ID))
	}

	var prog *seccomp.Program
	if s.Config != nil && s.Config.Linux != nil && s.Config.Linux.Seccomp != nil {
		if prog, err = seccomp.Compile(s.Config.Linux.Seccomp); err != nil {
			return nil, err
		}
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socketpair: %w", err)
	}
	sock := newSyncSocket(os.NewFile(uintptr(fds[0]), "sync-parent"))
	defer sock.close()
	childSock := os.NewFile(uintptr(fds[1]), "sync-child")
	defer childSock.Close()
	stdio, closeStdio, err := stdioFiles(opts.Stdin, opts.Stdout, opts.Stderr)
	if err != nil {
		return nil, err
	}
	defer closeStdio()
	files := append(stdio, opts.ExtraFiles...)
	sockFd := len(files)
	files = append(files, childSock, mntFile, rootFile)
	attr := &os.ProcAttr{
		Env:   []string{stageEnv + "=" + stageExec + "," + strconv.Itoa(sockFd)},
		Files: files,
		Sys:   &syscall.SysProcAttr{Setsid: true},
	}
	join := func() error {
		for _, n := range nsfds {
			if err := unix.Setns(n.fd, n.flag); err != nil {
				return fmt.Errorf("join namespace: %w", err)
			}
		}
		return nil
	}
	if len(nsfds) == 0 {
		join = nil
	}
	p, fk, err := startProcess(nil, join, false, "/proc/self/exe", []string{"berth-exec", s.ID}, attr)
	if err != nil {
		return nil, fmt.Errorf("start exec: %w", err)
	}
	childSock.Close()
	pr := &Process{Pid: p.Pid, proc: p, exited: make(chan struct{}), sys: processSys{forker: fk}}
	defer func() {
		if retErr != nil {
			_ = p.Kill()
			_, _ = pr.Wait()
		}
	}()
	stop := context.AfterFunc(ctx, func() { _ = p.Kill() })
	defer stop()
	tasks, err := joinCgroups(s.Pid, p.Pid)
	if err != nil {
		return nil, err
	}
	cfg := &stageConfig{
		Stage:       stageExec,
		ID:          s.ID,
		Bundle:      s.Bundle,
		Process:     proc,
		Annotations: s.Annotations,
		ExtraFiles:  len(opts.ExtraFiles),
		CgroupTasks: tasks,
	}
	if prog != nil {
		cfg.Seccomp, cfg.SeccompFlags = prog.Bytes(), prog.Flags
	}
	if err := sock.send(&message{Type: msgConfig, Config: cfg}); err != nil {
		return nil, pr.childError(err)
	}
	for {
		m, f, err := sock.recv()
		if errors.Is(err, io.EOF) {
			break // exec'd
		}
		if err != nil {
			return nil, pr.childError(err)
		}
		switch m.Type {
		case msgError:
			_, _ = pr.Wait()
			return nil, m.err()
		case msgConsole:
			if f == nil {
				return nil, errors.New("console message without a file descriptor")
			}
			if opts.ConsoleSocket != "" {
				err := sendConsole(opts.ConsoleSocket, f)
				f.Close()
				if err != nil {
					return nil, err
				}
			} else {
				pr.console = f
			}
		default:
			return nil, fmt.Errorf("unexpected message %q from exec", m.Type)
		}
	}
	if opts.PidFile != "" {
		if err := atomicWrite(opts.PidFile, []byte(strconv.Itoa(p.Pid))); err != nil {
			return nil, fmt.Errorf("pid file: %w", err)
		}
	}
	return pr, nil
}

func (p *Process) childError(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, unix.EPIPE) || errors.Is(err, unix.ECONNRESET) {
		if st, werr := p.Wait(); werr == nil {
			return fmt.Errorf("exec process exited early (status %d)", st.Code)
		}
	}
	return fmt.Errorf("exec: %w", err)
}

// joinCgroups gets pid, an exec stage, into every cgroup of the
// container's init that it is not in already: it returns the tasks files
// of those in cgroup v1 hierarchies, through which the stage moves its own
// thread (joinOwnThread, sparing an RCU grace period per exec), and moves
// pid into the unified hierarchy's itself.
func joinCgroups(initPid, pid int) (tasks []string, err error) {
	theirs, err := procCgroups(initPid)
	if err != nil {
		return nil, err
	}
	ours, err := procCgroups(pid)
	if err != nil {
		return nil, err
	}
	hier, err := cgroupMounts()
	if err != nil {
		return nil, err
	}
	for key, path := range theirs {
		if ours[key] == path {
			continue
		}
		mp, ok := hier[key]
		if !ok {
			continue
		}
		rel, err := filepath.Rel(mp.root, path)
		if err != nil || strings.HasPrefix(rel, "..") {
			continue
		}
		if key != "" {
			tasks = append(tasks, filepath.Join(mp.point, rel, "tasks"))
			continue
		}
		f := filepath.Join(mp.point, rel, "cgroup.procs")
		if err := os.WriteFile(f, []byte(strconv.Itoa(pid)), 0); err != nil {
			return nil, fmt.Errorf("join cgroup %s: %w", f, err)
		}
	}
	return tasks, nil
}

// procCgroups maps a hierarchy key (first controller, or "" for the
// unified one) to a process's cgroup path in it.
func procCgroups(pid int) (map[string]string, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		key := ""
		if parts[1] != "" {
			key = strings.Split(parts[1], ",")[0]
		}
		out[key] = parts[2]
	}
	return out, nil
}

type cgroupMount struct{ point, root string }

// cgroupMounts maps hierarchy keys to their mount points (this process's
// mount namespace).
func cgroupMounts() (map[string]cgroupMount, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	out := map[string]cgroupMount{}
	for _, line := range strings.Split(string(b), "\n") {
		fields := strings.Fields(line)
		sep := -1
		for i, fl := range fields {
			if fl == "-" {
				sep = i
				break
			}
		}
		if sep < 0 || len(fields) < sep+4 {
			continue
		}
		m := cgroupMount{point: unescapeMountPath(fields[4]), root: unescapeMountPath(fields[3])}
		switch fields[sep+1] {
		case "cgroup2":
			if _, ok := out[""]; !ok {
				out[""] = m
			}
		case "cgroup":
			for _, o := range strings.Split(fields[sep+3], ",") {
				if o == "rw" || o == "ro" {
					continue
				}
				if _, ok := out[o]; !ok {
					out[o] = m
				}
			}
		}
	}
	return out, nil
}

// runExecStage runs in the re-exec'd child of Exec: it enters the
// container's mount namespace and root, makes the terminal, and execs the
// process with the container's seccomp filter.
func runExecStage(sock *syncSocket, sockFd int) {
	cfg := receiveConfig(sock)
	mntFd, rootFd := sockFd+1, sockFd+2
	if err := enterMountNS(mntFd, rootFd); err != nil {
		stageFail(sock, err)
	}
	if cfg.Process.Terminal {
		if err := setupConsole(sock, cfg, false); err != nil {
			stageFail(sock, err)
		}
	}
	path, err := lookPath(cfg.Process)
	if err != nil {
		stageFail(sock, err)
	}
	execProcess(sock, cfg, path)
}

func enterMountNS(mntFd, rootFd int) error {
	defer unix.Close(mntFd)
	defer unix.Close(rootFd)
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return fmt.Errorf("unshare fs: %w", err)
	}
	if err := unix.Setns(mntFd, unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("join mount namespace: %w", err)
	}
	if err := unix.Fchdir(rootFd); err != nil {
		return fmt.Errorf("enter container root: %w", err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("chroot: %w", err)
	}
	return unix.Chdir("/")
}

func (p *Process) wait() (ExitStatus, error) {
	p.waitOnce.Do(func() {
		ps, err := p.proc.Wait()
		p.sys.forker.done()
		if err != nil {
			p.waitErr = err
		} else {
			p.exit = exitStatus(ps.Sys().(syscall.WaitStatus))
		}
		close(p.exited)
	})
	return p.exit, p.waitErr
}

func (p *Process) signal(sig syscall.Signal) error {
	if err := p.proc.Signal(sig); err != nil {
		if errors.Is(err, os.ErrProcessDone) {
			return errdefs.New(errdefs.ErrNotRunning, "process exited")
		}
		return err
	}
	return nil
}

func timeUntilMs(t time.Time) int64 { return time.Until(t).Milliseconds() }
