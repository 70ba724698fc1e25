package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-run/berth/internal/errdefs"
	"github.com/berth-run/berth/internal/seccomp"
)

const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// lookPath finds the process's executable as execvp would, with the PATH
// of the process's own environment, inside the container. The error texts
// are those of docker and runc ("executable file not found in $PATH").
func lookPath(p *specs.Process) (string, error) {
	if p == nil || len(p.Args) == 0 {
		return "", errdefs.New(errdefs.ErrInvalid, "process args must not be empty")
	}
	name := p.Args[0]
	if strings.Contains(name, "/") {
		if err := checkExecutable(name); err != nil {
			return "", &stageError{msg: fmt.Sprintf("exec: %q: %v", name, err), kind: errdefs.ErrNotFound, errno: errnoOf(err)}
		}
		return name, nil
	}
	path, ok := envValue(p.Env, "PATH")
	if !ok {
		path = defaultPath
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		f := filepath.Join(dir, name)
		if checkExecutable(f) == nil {
			if !filepath.IsAbs(f) {
				// Relative PATH entries resolve against the cwd.
				f = "./" + f
			}
			return f, nil
		}
	}
	return "", &stageError{msg: fmt.Sprintf("exec: %q: executable file not found in $PATH", name), kind: errdefs.ErrNotFound, errno: unix.ENOENT}
}

func checkExecutable(p string) error {
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		return &os.PathError{Op: "stat", Path: p, Err: err}
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return &os.PathError{Op: "exec", Path: p, Err: unix.EISDIR}
	}
	if st.Mode&0o111 == 0 {
		return &os.PathError{Op: "exec", Path: p, Err: unix.EACCES}
	}
	return nil
}

func errnoOf(err error) unix.Errno {
	var e unix.Errno
	if errors.As(err, &e) {
		return e
	}
	return 0
}

func envValue(env []string, key string) (string, bool) {
	for i := len(env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(env[i], "="); ok && k == key {
			return v, true
		}
	}
	return "", false
}

var rlimitNames = map[string]int{
	"RLIMIT_AS":         unix.RLIMIT_AS,
	"RLIMIT_CORE":       unix.RLIMIT_CORE,
	"RLIMIT_CPU":        unix.RLIMIT_CPU,
	"RLIMIT_DATA":       unix.RLIMIT_DATA,
	"RLIMIT_FSIZE":      unix.RLIMIT_FSIZE,
	"RLIMIT_LOCKS":      unix.RLIMIT_LOCKS,
	"RLIMIT_MEMLOCK":    unix.RLIMIT_MEMLOCK,
	"RLIMIT_MSGQUEUE":   unix.RLIMIT_MSGQUEUE,
	"RLIMIT_NICE":       unix.RLIMIT_NICE,
	"RLIMIT_NOFILE":     unix.RLIMIT_NOFILE,
	"RLIMIT_NPROC":      unix.RLIMIT_NPROC,
	"RLIMIT_RSS":        unix.RLIMIT_RSS,
	"RLIMIT_RTPRIO":     unix.RLIMIT_RTPRIO,
	"RLIMIT_RTTIME":     unix.RLIMIT_RTTIME,
	"RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING,
	"RLIMIT_STACK":      unix.RLIMIT_STACK,
}

// checkRlimits refuses, at create, limits the init could not set: unknown
// types, soft above hard, and hard limits above the caller's own without
// CAP_SYS_RESOURCE (the kernel would refuse them at exec time).
func checkRlimits(rl []specs.POSIXRlimit) error {
	canRaise := boundingSet(lastCap())&(1<<unix.CAP_SYS_RESOURCE) != 0 && hasEffective(unix.CAP_SYS_RESOURCE)
	for _, r := range rl {
		res, ok := rlimitNames[r.Type]
		if !ok {
			return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("unknown rlimit %q", r.Type))
		}
		if r.Soft > r.Hard {
			return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("%s: soft limit %d above hard limit %d", r.Type, r.Soft, r.Hard))
		}
		var cur unix.Rlimit
		if err := unix.Getrlimit(res, &cur); err != nil {
			return err
		}
		if r.Hard > cur.Max && !canRaise {
			return errdefs.Wrap(errdefs.ErrInvalid, fmt.Sprintf("set %s to %d:%d: above this process's hard limit %d", r.Type, r.Soft, r.Hard, cur.Max), unix.EPERM)
		}
	}
	return nil
}

// hasEffective reports whether this thread has capability c in effect.
func hasEffective(c uint) bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return false
	}
	return data[c/32].Effective&(1<<(c%32)) != 0
}

func setRlimits(rl []specs.POSIXRlimit) error {
	for _, r := range rl {
		res, ok := rlimitNames[r.Type]
		if !ok {
			return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("unknown rlimit %q", r.Type))
		}
		// syscall.Setrlimit (not unix.) so that the Go runtime forgets
		// the RLIMIT_NOFILE it would restore on exec.
		if err := syscall.Setrlimit(res, &syscall.Rlimit{Cur: r.Soft, Max: r.Hard}); err != nil {
			return fmt.Errorf("set %s to %d:%d: %w", r.Type, r.Soft, r.Hard, err)
		}
	}
	return nil
}

// execProcess finishes the process (credentials, capabilities,
// no_new_privs, seccomp, stdio) on the locked thread and execve's it. It
// only returns by exiting.
func execProcess(sock *syncSocket, cfg *stageConfig, path string) {
	fail := func(err error) {
		if cfg.startConn >= 0 {
			reportStart(cfg.startConn, err)
			stageFail(nil, err)
		}
		stageFail(sock, err)
	}
	if err := finalizeProcess(cfg); err != nil {
		fail(err)
	}
	p := cfg.Process
	err := syscall.Exec(path, p.Args, p.Env)
	fail(&stageError{msg: fmt.Sprintf("exec %q: %v", p.Args[0], err), errno: errnoOf(err)})
}

// finalizeProcess does, in this order: rlimits, close-on-exec of every fd
// the process must not inherit, stdio ownership, no_new_privs, seccomp
// (when it needs CAP_SYS_ADMIN), the bounding set, groups and ids,
// capabilities, the parent-death signal, the working directory, the
// umask, and seccomp (when no_new_privs allows it without privileges).
func finalizeProcess(cfg *stageConfig) error {
	p := cfg.Process
	// Rlimits last but one: a small RLIMIT_AS or RLIMIT_NOFILE must not
	// hit the Go code of this stage. Create checked them already.
	if err := setRlimits(p.Rlimits); err != nil {
		return err
	}
	if cfg.consoleSlave > 0 {
		if err := useConsole(cfg.consoleSlave); err != nil {
			return err
		}
	}
	if err := closeExtraFds(3 + cfg.ExtraFiles); err != nil {
		return err
	}
	if p.User.UID != 0 {
		fixStdioOwner(int(p.User.UID), int(p.User.GID))
	}
	caps, err := parseProcessCaps(p.Capabilities)
	if err != nil {
		return err
	}
	if p.NoNewPrivileges {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("set no_new_privs: %w", err)
		}
	}
	if len(cfg.Seccomp) > 0 && !p.NoNewPrivileges {
		if err := seccomp.Install(cfg.Seccomp, cfg.SeccompFlags); err != nil {
			return err
		}
	}
	if p.Capabilities != nil {
		if err := caps.dropBounding(); err != nil {
			return err
		}
	}
	if err := setUser(cfg, &p.User); err != nil {
		return err
	}
	if p.Capabilities != nil {
		if err := caps.apply(); err != nil {
			return err
		}
	}
	if cfg.Pdeathsig != 0 {
		if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(cfg.Pdeathsig), 0, 0, 0); err != nil {
			return fmt.Errorf("set parent-death signal: %w", err)
		}
	}
	if p.Cwd != "" {
		if err := unix.Chdir(p.Cwd); err != nil {
			return fmt.Errorf("chdir to cwd (%q) set in config.json: %w", p.Cwd, err)
		}
	}
	mask := 0o022
	if p.User.Umask != nil {
		mask = int(*p.User.Umask)
	}
	unix.Umask(mask)
	if len(cfg.Seccomp) > 0 && p.NoNewPrivileges {
		if err := seccomp.Install(cfg.Seccomp, cfg.SeccompFlags); err != nil {
			return err
		}
	}
	return nil
}

// setUser sets the groups, gid and uid of this thread only (raw system
// calls: the Go wrappers change every thread, which is not needed since
// this thread execs). Capabilities survive the uid change through
// PR_SET_KEEPCAPS and are then set from the spec.
func setUser(cfg *stageConfig, u *specs.User) error {
	groups := make([]uint32, 0, len(u.AdditionalGids))
	groups = append(groups, u.AdditionalGids...)
	var gp unsafe.Pointer
	if len(groups) > 0 {
		gp = unsafe.Pointer(&groups[0])
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, uintptr(len(groups)), uintptr(gp), 0); e != 0 {
		// A user namespace with setgroups denied refuses even an empty
		// list; that is fine when no groups are asked for.
		if !(e == unix.EPERM && len(groups) == 0 && cfg.UserNS) {
			return fmt.Errorf("setgroups %v: %w", groups, e)
		}
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(u.GID), uintptr(u.GID), uintptr(u.GID)); e != 0 {
		return fmt.Errorf("setgid %d: %w", u.GID, e)
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("set keepcaps: %w", err)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(u.UID), uintptr(u.UID), uintptr(u.UID)); e != 0 {
		return fmt.Errorf("setuid %d: %w", u.UID, e)
	}
	return unix.Prctl(unix.PR_SET_KEEPCAPS, 0, 0, 0, 0)
}

// closeExtraFds marks every fd from first on close-on-exec (the Go
// runtime's own, the sync socket), so the process gets only its stdio and
// extra files.
func closeExtraFds(first int) error {
	if err := unix.CloseRange(uint(first), ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		return fmt.Errorf("mark fds close-on-exec: %w", err)
	}
	return nil
}

// fixStdioOwner gives the stdio fds to the container's user so it can
// reopen /dev/stdout and friends, unless they are /dev/null.
func fixStdioOwner(uid, gid int) {
	var null unix.Stat_t
	_ = unix.Stat("/dev/null", &null)
	for fd := 0; fd < 3; fd++ {
		var st unix.Stat_t
		if unix.Fstat(fd, &st) != nil {
			continue
		}
		if st.Rdev == null.Rdev && st.Mode&unix.S_IFMT == unix.S_IFCHR {
			continue
		}
		_ = unix.Fchown(fd, uid, gid)
	}
}
