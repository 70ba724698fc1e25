package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	goruntime "runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/berth-run/berth"
)

// containerFlags are the flags of `run` and `create`: docker's names,
// meanings and defaults.
type containerFlags struct {
	detach, interactive, tty, rm, privileged, readOnly, init, publishAll, oomKillDisable                       bool
	name, user, workdir, hostname, domainname, entrypoint, network, memory, memorySwap, memoryReservation      string
	cpus, cpusetCpus, cpusetMems, stopSignal, restart, cgroupParent, pid, ipc, uts, mac, ip, shmSize, platform string
	cpuShares, pidsLimit, cpuPeriod, cpuQuota                                                                  int64
	blkioWeight                                                                                                uint16
	stopTimeout                                                                                                int
	entrypointSet                                                                                              bool
	env, envFile, labels, capAdd, capDrop, ulimits, securityOpt, publish, volumes, mounts, tmpfs               []string
	volumesFrom, dns, dnsSearch, dnsOption, addHost, devices, groupAdd, sysctls, aliases, labelFile            []string
	detachKeys                                                                                                 string
	logDriver                                                                                                  string
	logOpts                                                                                                    []string
}

func (f *containerFlags) register(fl *pflag.FlagSet) {
	fl.SetInterspersed(false)             // flags after the image belong to the command
	fl.Bool("help", false, "Print usage") // -h is --hostname, as in docker
	fl.BoolVarP(&f.detach, "detach", "d", false, "Run container in background and print container ID")
	fl.BoolVarP(&f.interactive, "interactive", "i", false, "Keep STDIN open even if not attached")
	fl.BoolVarP(&f.tty, "tty", "t", false, "Allocate a pseudo-TTY")
	fl.BoolVar(&f.rm, "rm", false, "Automatically remove the container when it exits")
	fl.BoolVar(&f.privileged, "privileged", false, "Give extended privileges to this container")
	fl.BoolVar(&f.readOnly, "read-only", false, "Mount the container's root filesystem as read only")
	fl.BoolVar(&f.init, "init", false, "Run an init inside the container that forwards signals and reaps processes")
	fl.BoolVarP(&f.publishAll, "publish-all", "P", false, "Publish all exposed ports to random ports")
	fl.BoolVar(&f.oomKillDisable, "oom-kill-disable", false, "Disable OOM Killer")
	fl.StringVar(&f.name, "name", "", "Assign a name to the container")
	fl.StringVarP(&f.user, "user", "u", "", "Username or UID (format: <name|uid>[:<group|gid>])")
	fl.StringVarP(&f.workdir, "workdir", "w", "", "Working directory inside the container")
	fl.StringVarP(&f.hostname, "hostname", "h", "", "Container host name")
	fl.StringVar(&f.domainname, "domainname", "", "Container NIS domain name")
	fl.StringVar(&f.entrypoint, "entrypoint", "", "Overwrite the default ENTRYPOINT of the image")
	fl.StringVar(&f.network, "network", "", "Connect a container to a network (bridge, none, host, container:NAME, or a network name)")
	fl.StringVar(&f.network, "net", "", "Connect a container to a network")
	_ = fl.MarkHidden("net")
	fl.StringVarP(&f.memory, "memory", "m", "", "Memory limit")
	fl.StringVar(&f.memorySwap, "memory-swap", "", "Swap limit equal to memory plus swap: '-1' to enable unlimited swap")
	fl.StringVar(&f.memoryReservation, "memory-reservation", "", "Memory soft limit")
	fl.StringVar(&f.cpus, "cpus", "", "Number of CPUs")
	fl.Int64VarP(&f.cpuShares, "cpu-shares", "c", 0, "CPU shares (relative weight)")
	fl.Int64Var(&f.cpuPeriod, "cpu-period", 0, "Limit CPU CFS (Completely Fair Scheduler) period")
	fl.Int64Var(&f.cpuQuota, "cpu-quota", 0, "Limit CPU CFS (Completely Fair Scheduler) quota")
	fl.StringVar(&f.cpusetCpus, "cpuset-cpus", "", "CPUs in which to allow execution (0-3, 0,1)")
	fl.StringVar(&f.cpusetMems, "cpuset-mems", "", "MEMs in which to allow execution (0-3, 0,1)")
	fl.Int64Var(&f.pidsLimit, "pids-limit", 0, "Tune container pids limit (set -1 for unlimited)")
	fl.Uint16Var(&f.blkioWeight, "blkio-weight", 0, "Block IO (relative weight), between 10 and 1000, or 0 to disable")
	fl.StringVar(&f.stopSignal, "stop-signal", "", "Signal to stop the container")
	fl.IntVar(&f.stopTimeout, "stop-timeout", 0, "Timeout (in seconds) to stop a container")
	fl.StringVar(&f.restart, "restart", "no", "Restart policy to apply when a container exits")
	fl.StringVar(&f.cgroupParent, "cgroup-parent", "", "Optional parent cgroup for the container")
	fl.StringVar(&f.pid, "pid", "", "PID namespace to use")
	fl.StringVar(&f.ipc, "ipc", "", "IPC mode to use")
	fl.StringVar(&f.uts, "uts", "", "UTS namespace to use")
	fl.StringVar(&f.mac, "mac-address", "", "Container MAC address (e.g., 92:d0:c6:0a:29:33)")
	fl.StringVar(&f.ip, "ip", "", "IPv4 address (e.g., 172.30.100.104)")
	fl.StringVar(&f.shmSize, "shm-size", "", "Size of /dev/shm")
	fl.StringVar(&f.platform, "platform", "", "Set platform if server is multi-platform capable")
	fl.StringVar(&f.detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	fl.StringVar(&f.logDriver, "log-driver", "", "Logging driver for the container (json-file, local, none)")
	fl.StringArrayVar(&f.logOpts, "log-opt", nil, "Log driver options (max-size, max-file, labels, env)")
	fl.StringArrayVarP(&f.env, "env", "e", nil, "Set environment variables")
	fl.StringArrayVar(&f.envFile, "env-file", nil, "Read in a file of environment variables")
	fl.StringArrayVarP(&f.labels, "label", "l", nil, "Set meta data on a container")
	fl.StringArrayVar(&f.labelFile, "label-file", nil, "Read in a line delimited file of labels")
	fl.StringArrayVar(&f.capAdd, "cap-add", nil, "Add Linux capabilities")
	fl.StringArrayVar(&f.capDrop, "cap-drop", nil, "Drop Linux capabilities")
	fl.StringArrayVar(&f.ulimits, "ulimit", nil, "Ulimit options")
	fl.StringArrayVar(&f.securityOpt, "security-opt", nil, "Security Options")
	fl.StringArrayVarP(&f.publish, "publish", "p", nil, "Publish a container's port(s) to the host")
	fl.StringArrayVarP(&f.volumes, "volume", "v", nil, "Bind mount a volume")
	fl.StringArrayVar(&f.mounts, "mount", nil, "Attach a filesystem mount to the container")
	fl.StringArrayVar(&f.tmpfs, "tmpfs", nil, "Mount a tmpfs directory")
	fl.StringArrayVar(&f.volumesFrom, "volumes-from", nil, "Mount volumes from the specified container(s)")
	// The seed course (P33) writes --volume-from; accept it as a hidden alias.
	fl.StringArrayVar(&f.volumesFrom, "volume-from", nil, "Mount volumes from the specified container(s)")
	_ = fl.MarkHidden("volume-from")
	fl.StringArrayVar(&f.dns, "dns", nil, "Set custom DNS servers")
	fl.StringArrayVar(&f.dnsSearch, "dns-search", nil, "Set custom DNS search domains")
	fl.StringArrayVar(&f.dnsOption, "dns-option", nil, "Set DNS options")
	fl.StringArrayVar(&f.addHost, "add-host", nil, "Add a custom host-to-IP mapping (host:ip)")
	fl.StringArrayVar(&f.devices, "device", nil, "Add a host device to the container")
	fl.StringArrayVar(&f.groupAdd, "group-add", nil, "Add additional groups to join")
	fl.StringArrayVar(&f.sysctls, "sysctl", nil, "Sysctl options")
	fl.StringArrayVar(&f.aliases, "network-alias", nil, "Add network-scoped alias for the container")
}

// spec turns the flags, the image and the command into a Spec. Every
// value is checked here, so a typo fails before anything is created.
func (f *containerFlags) spec(cmd *cobra.Command, image string, args []string) (berth.Spec, error) {
	s := berth.Spec{Image: image, Cmd: args, Name: f.name, User: f.user, WorkingDir: f.workdir, Hostname: f.hostname,
		Domainname: f.domainname, Network: f.network, Tty: f.tty, OpenStdin: f.interactive, AutoRemove: f.rm,
		Privileged: f.privileged, ReadOnly: f.readOnly, Init: f.init, PublishAll: f.publishAll, StopSignal: f.stopSignal,
		CgroupParent: f.cgroupParent, PidMode: f.pid, IpcMode: f.ipc, UTSMode: f.uts, MacAddress: f.mac, IPAddress: f.ip,
		CapAdd: f.capAdd, CapDrop: f.capDrop, SecurityOpt: f.securityOpt, VolumesFrom: f.volumesFrom, DNS: f.dns,
		DNSSearch: f.dnsSearch, DNSOptions: f.dnsOption, ExtraHosts: f.addHost, GroupAdd: f.groupAdd,
		NetworkAliases: f.aliases}
	fl := cmd.Flags()
	if fl.Changed("entrypoint") {
		s.Entrypoint = []string{}
		if f.entrypoint != "" {
			s.Entrypoint = []string{f.entrypoint}
		}
	}
	s.LogConfig.Type = f.logDriver
	for _, o := range f.logOpts {
		k, v, ok := strings.Cut(o, "=")
		if !ok {
			return s, fmt.Errorf("invalid log opt %q: expected KEY=VALUE", o)
		}
		if s.LogConfig.Config == nil {
			s.LogConfig.Config = map[string]string{}
		}
		s.LogConfig.Config[k] = v
	}
	if fl.Changed("stop-timeout") {
		t := f.stopTimeout
		s.StopTimeout = &t
	}
	var err error
	for _, path := range f.envFile {
		file, err := os.Open(path)
		if err != nil {
			return s, fmt.Errorf("open env file: %w", err)
		}
		env, err := berth.ParseEnvFile(file)
		file.Close()
		if err != nil {
			return s, err
		}
		s.Env = append(s.Env, env...)
	}
	for _, e := range f.env {
		v, err := berth.ParseEnv(e)
		if err != nil {
			return s, err
		}
		if v != "" {
			s.Env = append(s.Env, v)
		}
	}
	for _, l := range f.labels {
		k, v, err := berth.ParseLabel(l)
		if err != nil {
			return s, err
		}
		if s.Labels == nil {
			s.Labels = map[string]string{}
		}
		s.Labels[k] = v
	}
	res := &s.Resources
	if f.memory != "" {
		if res.Memory, err = berth.ParseMemory(f.memory); err != nil {
			return s, err
		}
	}
	if f.memorySwap != "" {
		if res.MemorySwap, err = berth.ParseMemorySwap(f.memorySwap); err != nil {
			return s, err
		}
	}
	if f.memoryReservation != "" {
		if res.MemoryReservation, err = berth.ParseMemory(f.memoryReservation); err != nil {
			return s, err
		}
	}
	if f.cpus != "" {
		if res.NanoCPUs, err = berth.ParseCPUs(f.cpus); err != nil {
			return s, err
		}
	}
	if f.shmSize != "" {
		if s.ShmSize, err = berth.ParseMemory(f.shmSize); err != nil {
			return s, err
		}
	}
	res.CPUShares, res.CPUPeriod, res.CPUQuota = f.cpuShares, f.cpuPeriod, f.cpuQuota
	res.CpusetCpus, res.CpusetMems, res.PidsLimit = f.cpusetCpus, f.cpusetMems, f.pidsLimit
	res.BlkioWeight, res.OomKillDisable = f.blkioWeight, f.oomKillDisable
	for _, u := range f.ulimits {
		ul, err := berth.ParseUlimit(u)
		if err != nil {
			return s, err
		}
		s.Ulimits = append(s.Ulimits, ul)
	}
	if s.RestartPolicy, err = berth.ParseRestartPolicy(f.restart); err != nil {
		return s, err
	}
	if len(f.publish) > 0 {
		if s.Ports, err = berth.ParsePorts(f.publish...); err != nil {
			return s, err
		}
	}
	for _, v := range f.volumes {
		m, err := berth.ParseVolume(v)
		if err != nil {
			return s, err
		}
		s.Mounts = append(s.Mounts, m)
	}
	for _, v := range f.mounts {
		m, err := berth.ParseMount(v)
		if err != nil {
			return s, err
		}
		s.Mounts = append(s.Mounts, m)
	}
	for _, v := range f.tmpfs {
		m, err := berth.ParseTmpfs(v)
		if err != nil {
			return s, err
		}
		s.Mounts = append(s.Mounts, m)
	}
	for _, d := range f.devices {
		dev, err := berth.ParseDevice(d)
		if err != nil {
			return s, err
		}
		s.Devices = append(s.Devices, dev)
	}
	for _, kv := range f.sysctls {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return s, fmt.Errorf("invalid sysctl value %q: expected KEY=VALUE", kv)
		}
		if s.Sysctls == nil {
			s.Sysctls = map[string]string{}
		}
		s.Sysctls[k] = v
	}
	if f.platform != "" && f.platform != "linux/"+goarch() && f.platform != "linux" {
		return s, fmt.Errorf("platform %q is not supported: this host runs linux/%s", f.platform, goarch())
	}
	return s, nil
}

// containerCommands returns run, create, start, exec, rm, stop, kill,
// wait and inspect.
func containerCommands(g *globals) []*cobra.Command {
	return []*cobra.Command{runCmd(g), createCmd(g), startCmd(g), execCmd(g), rmCmd(g), stopCmd(g), killCmd(g), waitCmd(g), inspectCmd(g)}
}

func createCmd(g *globals) *cobra.Command {
	f := &containerFlags{}
	c := &cobra.Command{
		Use:   "create [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create a new container",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			spec, err := f.spec(cmd, args[0], args[1:])
			if err != nil {
				return err
			}
			rt, err := g.open(ctx)
			if err != nil {
				return err
			}
			c, err := rt.Create(ctx, spec)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), c.ID())
			return nil
		},
	}
	f.register(c.Flags())
	return c
}

func runCmd(g *globals) *cobra.Command {
	f := &containerFlags{}
	sigProxy := true
	c := &cobra.Command{
		Use:   "run [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create and run a new container from an image",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			spec, err := f.spec(cmd, args[0], args[1:])
			if err != nil {
				return exitError{code: 125, err: err}
			}
			rt, err := g.open(ctx)
			if err != nil {
				return exitError{code: 125, err: err}
			}
			if f.detach {
				return runDetached(cmd, rt, spec)
			}
			if f.interactive || f.tty {
				// Under the monitor with this terminal attached, so
				// that the detach keys work (detach.go).
				return runInteractive(cmd, rt, spec, f.detachKeys, sigProxy)
			}
			return runForeground(cmd, rt, spec, f.interactive)
		},
	}
	f.register(c.Flags())
	c.Flags().BoolVar(&sigProxy, "sig-proxy", true, "Proxy received signals to the process")
	return c
}

// runForeground runs a container attached to this terminal: this process
// is its parent, its output is ours, and its exit code becomes ours.
func runForeground(cmd *cobra.Command, rt *berth.Runtime, spec berth.Spec, interactive bool) error {
	ctx := cmd.Context()
	opts := []berth.RunOption{berth.WithStdout(cmd.OutOrStdout()), berth.WithStderr(cmd.ErrOrStderr())}
	if interactive {
		opts = append(opts, berth.WithStdin(cmd.InOrStdin()))
	}
	var restore func()
	if spec.Tty && isTerminal(os.Stdin) && interactive {
		if st, err := term.MakeRaw(int(os.Stdin.Fd())); err == nil {
			restore = func() { _ = term.Restore(int(os.Stdin.Fd()), st) }
		}
	}
	c, err := rt.Run(ctx, spec, opts...)
	if err != nil {
		if restore != nil {
			restore()
		}
		return exitError{code: exitCodeFor(err), err: err}
	}
	if restore != nil {
		defer restore()
	}
	stop := forwardSignals(ctx, c, spec.Tty)
	defer stop()
	code, err := c.Wait(context.WithoutCancel(ctx))
	if err != nil {
		return exitError{code: 125, err: err}
	}
	if code != 0 {
		return exitError{code: code}
	}
	return nil
}

// forwardSignals passes SIGINT, SIGTERM, SIGHUP, SIGQUIT and SIGUSR1/2 to
// the container (docker's --sig-proxy) and, with a terminal, keeps its
// size in step with ours.
func forwardSignals(ctx context.Context, c *berth.Container, tty bool) func() {
	ch := make(chan os.Signal, 8)
	sigs := []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2}
	if tty {
		sigs = append(sigs, syscall.SIGWINCH)
		resize(ctx, c)
	}
	signal.Notify(ch, sigs...)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-ch:
				if s == syscall.SIGWINCH {
					resize(ctx, c)
					continue
				}
				_ = c.Kill(ctx, s.(syscall.Signal))
			case <-done:
				return
			}
		}
	}()
	return func() { signal.Stop(ch); close(done) }
}

func resize(ctx context.Context, c *berth.Container) {
	if w, h, err := term.GetSize(int(os.Stdout.Fd())); err == nil {
		_ = c.Resize(ctx, uint16(w), uint16(h))
	}
}

// exitCodeFor is docker's exit status for a run that failed before the
// container's process ran: 127 command not found, 126 not executable,
// 125 anything else.
func exitCodeFor(err error) int {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "executable file not found"), strings.Contains(msg, "no such file or directory"):
		return 127
	case strings.Contains(msg, "permission denied"):
		return 126
	}
	return 125
}

func startCmd(g *globals) *cobra.Command {
	var attach, interactive bool
	var detachKeys string
	c := &cobra.Command{
		Use:   "start [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Start one or more stopped containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			rt, err := g.open(ctx)
			if err != nil {
				return err
			}
			if attach || interactive {
				if len(args) > 1 {
					return errors.New("you cannot start and attach multiple containers at once")
				}
				return startAttached(cmd, rt, args[0], interactive, detachKeys) // detach.go
			}
			return startDetached(cmd, rt, args)
		},
	}
	c.Flags().BoolVarP(&attach, "attach", "a", false, "Attach STDOUT/STDERR and forward signals")
	c.Flags().BoolVarP(&interactive, "interactive", "i", false, "Attach container's STDIN")
	c.Flags().StringVar(&detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	return c
}

func execCmd(g *globals) *cobra.Command {
	var interactive, tty, detach, privileged bool
	var env, envFile []string
	var user, workdir string
	c := &cobra.Command{
		Use:   "exec [OPTIONS] CONTAINER COMMAND [ARG...]",
		Short: "Execute a command in a running container",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			rt, err := g.open(ctx)
			if err != nil {
				return err
			}
			c, err := rt.Container(ctx, args[0])
			if err != nil {
				return err
			}
			es := berth.ExecSpec{Cmd: args[1:], User: user, WorkingDir: workdir, Tty: tty, Privileged: privileged}
			for _, path := range envFile {
				file, err := os.Open(path)
				if err != nil {
					return err
				}
				vals, err := berth.ParseEnvFile(file)
				file.Close()
				if err != nil {
					return err
				}
				es.Env = append(es.Env, vals...)
			}
			for _, e := range env {
				v, err := berth.ParseEnv(e)
				if err != nil {
					return err
				}
				es.Env = append(es.Env, v)
			}
			if !detach {
				es.Stdout, es.Stderr = cmd.OutOrStdout(), cmd.ErrOrStderr()
				if interactive {
					es.Stdin = cmd.InOrStdin()
				}
			}
			var restore func()
			if tty && interactive && isTerminal(os.Stdin) {
				if st, err := term.MakeRaw(int(os.Stdin.Fd())); err == nil {
					restore = func() { _ = term.Restore(int(os.Stdin.Fd()), st) }
				}
			}
			p, err := c.Exec(ctx, es)
			if err != nil {
				if restore != nil {
					restore()
				}
				return exitError{code: exitCodeFor(err), err: err}
			}
			if detach {
				return nil
			}
			if tty {
				if w, h, err := term.GetSize(int(os.Stdout.Fd())); err == nil {
					_ = p.Resize(uint16(w), uint16(h))
				}
			}
			code, err := p.Wait(context.WithoutCancel(ctx))
			if restore != nil {
				restore()
			}
			if err != nil {
				return err
			}
			if code != 0 {
				return exitError{code: code}
			}
			return nil
		},
	}
	fl := c.Flags()
	fl.SetInterspersed(false)
	fl.BoolVarP(&interactive, "interactive", "i", false, "Keep STDIN open even if not attached")
	fl.BoolVarP(&tty, "tty", "t", false, "Allocate a pseudo-TTY")
	fl.BoolVarP(&detach, "detach", "d", false, "Detached mode: run command in the background")
	fl.BoolVar(&privileged, "privileged", false, "Give extended privileges to the command")
	fl.StringArrayVarP(&env, "env", "e", nil, "Set environment variables")
	fl.StringArrayVar(&envFile, "env-file", nil, "Read in a file of environment variables")
	fl.StringVarP(&user, "user", "u", "", "Username or UID (format: \"<name|uid>[:<group|gid>]\")")
	fl.StringVarP(&workdir, "workdir", "w", "", "Working directory inside the container")
	return c
}

func rmCmd(g *globals) *cobra.Command {
	var force, volumes, link bool
	c := &cobra.Command{
		Use:     "rm [OPTIONS] CONTAINER [CONTAINER...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more containers",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			rt, err := g.open(ctx)
			if err != nil {
				return err
			}
			var opts []berth.RemoveOption
			if force {
				opts = append(opts, berth.RemoveForce())
			}
			if volumes {
				opts = append(opts, berth.RemoveVolumes())
			}
			return eachContainer(cmd, rt, args, func(c *berth.Container, arg string) error {
				return c.Remove(ctx, opts...)
			})
		},
	}
	c.Flags().BoolVarP(&force, "force", "f", false, "Force the removal of a running container (uses SIGKILL)")
	c.Flags().BoolVarP(&volumes, "volumes", "v", false, "Remove anonymous volumes associated with the container")
	c.Flags().BoolVarP(&link, "link", "l", false, "Remove the specified link (accepted; berth has no links)")
	return c
}

// eachContainer runs fn on every named container, printing each name as
// docker does on success and each error on stderr; any failure makes the
// command fail.
func eachContainer(cmd *cobra.Command, rt *berth.Runtime, args []string, fn func(c *berth.Container, arg string) error) error {
	ctx := cmd.Context()
	failed := false
	for _, a := range args {
		c, err := rt.Container(ctx, a)
		if err == nil {
			err = fn(c, a)
		}
		if err != nil {
			fmt.Fprintln(cmd.ErrOrStderr(), "Error response from daemon:", err)
			failed = true
			continue
		}
		fmt.Fprintln(cmd.OutOrStdout(), a)
	}
	if failed {
		return exitError{code: 1}
	}
	return nil
}

func stopCmd(g *globals) *cobra.Command {
	var timeout func(*cobra.Command) *time.Duration
	var signalName string
	c := &cobra.Command{
		Use:   "stop [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Stop one or more running containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			rt, err := g.open(ctx)
			if err != nil {
				return err
			}
			t := timeout(cmd)
			return eachContainer(cmd, rt, args, func(c *berth.Container, _ string) error { return c.Stop(ctx, t) })
		},
	}
	timeout = timeoutFlags(c) // detach.go
	c.Flags().StringVarP(&signalName, "signal", "s", "", "Signal to send to the container (accepted: the container's stop signal is used)")
	return c
}

func killCmd(g *globals) *cobra.Command {
	var signalName string
	c := &cobra.Command{
		Use:   "kill [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Kill one or more running containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			sig, err := berth.ParseSignal(signalName)
			if err != nil {
				return err
			}
			rt, err := g.open(ctx)
			if err != nil {
				return err
			}
			return eachContainer(cmd, rt, args, func(c *berth.Container, _ string) error { return c.Kill(ctx, syscall.Signal(sig)) })
		},
	}
	c.Flags().StringVarP(&signalName, "signal", "s", "KILL", "Signal to send to the container")
	return c
}

func waitCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "wait CONTAINER [CONTAINER...]",
		Short: "Block until one or more containers stop, then print their exit codes",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			rt, err := g.open(ctx)
			if err != nil {
				return err
			}
			failed := false
			for _, a := range args {
				c, err := rt.Container(ctx, a)
				if err == nil {
					var code int
					if code, err = c.Wait(ctx); err == nil {
						fmt.Fprintln(cmd.OutOrStdout(), strconv.Itoa(code))
						continue
					}
				}
				fmt.Fprintln(cmd.ErrOrStderr(), "Error response from daemon:", err)
				failed = true
			}
			if failed {
				return exitError{code: 1}
			}
			return nil
		},
	}
}

func inspectCmd(g *globals) *cobra.Command {
	var format, typ string
	var size bool
	c := &cobra.Command{
		Use:   "inspect [OPTIONS] NAME|ID [NAME|ID...]",
		Short: "Return low-level information on containers or images",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			rt, err := g.open(ctx)
			if err != nil {
				return err
			}
			var objs []any
			for _, a := range args {
				obj, err := inspectOne(ctx, rt, a, typ)
				if err != nil {
					return err
				}
				objs = append(objs, obj)
			}
			return printInspect(cmd.OutOrStdout(), format, objs)
		},
	}
	c.Flags().StringVarP(&format, "format", "f", "", "Format output using a custom template")
	c.Flags().StringVar(&typ, "type", "", "Only inspect objects of the given type (container, image)")
	c.Flags().BoolVarP(&size, "size", "s", false, "Display total file sizes if the type is container (accepted)")
	return c
}

// inspectOne finds a container, then an image, named a (docker's order).
func inspectOne(ctx context.Context, rt *berth.Runtime, a, typ string) (any, error) {
	if typ == "" || typ == "container" {
		c, err := rt.Container(ctx, a)
		if err == nil {
			return c.Inspect(ctx)
		}
		if typ == "container" || !errors.Is(err, berth.ErrNotFound) {
			return nil, err
		}
	}
	if typ == "" || typ == "image" {
		im, err := rt.Image(ctx, a)
		if err == nil {
			return im.Inspect(), nil
		}
		if typ == "image" || !errors.Is(err, berth.ErrNotFound) && !errors.Is(err, berth.ErrInvalid) {
			return nil, err
		}
	}
	if typ != "" && typ != "container" && typ != "image" {
		return nil, fmt.Errorf("%q is not a valid value for --type", typ)
	}
	return nil, fmt.Errorf("no such object: %s", a)
}

// goarch is this host's architecture in OCI terms.
func goarch() string { return goruntime.GOARCH }
