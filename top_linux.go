package berth

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/berth-run/berth/internal/errdefs"
)

// clockTicks is USER_HZ, the unit of the times in /proc/PID/stat (100 on
// every Linux ABI Go supports).
const clockTicks = 100

// topColumn is one column of Top's output: its title and how to render
// a process.
type topColumn struct {
	title  string
	render func(p *procInfo, h *procHost) string
}

// topFormats are the column sets of ps's standard formats.
var (
	topFull = []string{"user:UID", "pid", "ppid", "c", "stime", "tty", "time", "args:CMD"}                          // -f
	topAux  = []string{"user", "pid", "%cpu", "%mem", "vsz", "rss", "tty", "stat", "start", "time", "args:COMMAND"} // aux
	topBare = []string{"pid", "tty", "time", "comm:CMD"}                                                            // -e
)

// topColumns maps ps -o field names to titles and renderers.
var topColumns = map[string]topColumn{
	"pid":     {"PID", func(p *procInfo, _ *procHost) string { return strconv.Itoa(p.pid) }},
	"ppid":    {"PPID", func(p *procInfo, _ *procHost) string { return strconv.Itoa(p.ppid) }},
	"pgid":    {"PGID", func(p *procInfo, _ *procHost) string { return strconv.Itoa(p.pgrp) }},
	"sid":     {"SID", func(p *procInfo, _ *procHost) string { return strconv.Itoa(p.session) }},
	"uid":     {"UID", func(p *procInfo, _ *procHost) string { return strconv.Itoa(p.uid) }},
	"user":    {"USER", func(p *procInfo, h *procHost) string { return h.userName(p.uid) }},
	"gid":     {"GID", func(p *procInfo, _ *procHost) string { return strconv.Itoa(p.gid) }},
	"group":   {"GROUP", func(p *procInfo, h *procHost) string { return h.groupName(p.gid) }},
	"comm":    {"COMMAND", func(p *procInfo, _ *procHost) string { return p.comm }},
	"args":    {"COMMAND", func(p *procInfo, _ *procHost) string { return p.args() }},
	"cmd":     {"CMD", func(p *procInfo, _ *procHost) string { return p.args() }},
	"command": {"COMMAND", func(p *procInfo, _ *procHost) string { return p.args() }},
	"stat":    {"STAT", func(p *procInfo, _ *procHost) string { return p.stat() }},
	"state":   {"S", func(p *procInfo, _ *procHost) string { return string(p.state) }},
	"time":    {"TIME", func(p *procInfo, _ *procHost) string { return cpuTime(p.utime + p.stime) }},
	"etime":   {"ELAPSED", func(p *procInfo, h *procHost) string { return elapsed(h.elapsed(p)) }},
	"stime":   {"STIME", func(p *procInfo, h *procHost) string { return h.startTime(p) }},
	"start":   {"START", func(p *procInfo, h *procHost) string { return h.startTime(p) }},
	"tty":     {"TTY", func(p *procInfo, _ *procHost) string { return ttyName(p.ttyNr) }},
	"rss":     {"RSS", func(p *procInfo, _ *procHost) string { return strconv.FormatUint(p.rssKiB, 10) }},
	"vsz":     {"VSZ", func(p *procInfo, _ *procHost) string { return strconv.FormatUint(p.vsize/1024, 10) }},
	"nlwp":    {"NLWP", func(p *procInfo, _ *procHost) string { return strconv.Itoa(p.threads) }},
	"ni":      {"NI", func(p *procInfo, _ *procHost) string { return strconv.Itoa(p.nice) }},
	"c":       {"C", func(p *procInfo, h *procHost) string { return strconv.FormatUint(min(h.permille(p)/10, 99), 10) }},
	"%cpu":    {"%CPU", renderPcpu},
	"pcpu":    {"%CPU", renderPcpu},
	"%mem":    {"%MEM", renderPmem},
	"pmem":    {"%MEM", renderPmem},
}

// renderPcpu is ps's %CPU: CPU time over the process's lifetime.
func renderPcpu(p *procInfo, h *procHost) string {
	v := min(h.permille(p), 999)
	return fmt.Sprintf("%d.%d", v/10, v%10)
}

// renderPmem is ps's %MEM: resident memory over the host's memory.
func renderPmem(p *procInfo, h *procHost) string {
	var v uint64
	if h.memTotalKiB > 0 {
		v = p.rssKiB * 1000 / h.memTotalKiB
	}
	return fmt.Sprintf("%d.%d", v/10, v%10)
}

// parsePsArgs turns docker top's ps options into columns.
func parsePsArgs(args []string) ([]topColumn, error) {
	var fields []string
	bad := func() error {
		return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("ps options %q are not supported: use -ef, aux, or -o with a list of columns", strings.Join(args, " ")))
	}
	switch strings.Join(args, " ") {
	case "", "-ef", "-f", "-eF", "-Af", "-fe":
		fields = topFull
	case "aux", "-aux", "axu", "ax u":
		fields = topAux
	case "-e", "-A", "ax", "-ax":
		fields = topBare
	default:
		for i := 0; i < len(args); i++ {
			a := args[i]
			var list string
			switch {
			case a == "-o" || a == "-eo" || a == "-Ao" || a == "o":
				if i+1 == len(args) {
					return nil, bad()
				}
				i++
				list = args[i]
			case strings.HasPrefix(a, "-eo"), strings.HasPrefix(a, "-Ao"):
				list = a[3:]
			case strings.HasPrefix(a, "-o"):
				list = a[2:]
			case a == "-e" || a == "-A":
				continue
			default:
				return nil, bad()
			}
			for _, f := range strings.Split(list, ",") {
				if f = strings.TrimSpace(f); f != "" {
					fields = append(fields, f)
				}
			}
		}
		if len(fields) == 0 {
			return nil, bad()
		}
	}
	cols := make([]topColumn, 0, len(fields))
	for _, f := range fields {
		name, title, renamed := strings.Cut(f, ":")
		if !renamed {
			name, title, renamed = strings.Cut(f, "=")
		}
		col, ok := topColumns[strings.ToLower(name)]
		if !ok {
			return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("unknown ps column %q", name))
		}
		if renamed {
			col.title = title
		}
		cols = append(cols, col)
	}
	return cols, nil
}

func (c *Container) top(ctx context.Context, psArgs []string) (*TopResult, error) {
	cols, err := parsePsArgs(psArgs)
	if err != nil {
		return nil, err
	}
	r := c.rt
	st, err := r.reconcile(ctx, c.rec.ID)
	if err != nil {
		return nil, err
	}
	if st.Status != StatusRunning && st.Status != StatusPaused {
		return nil, notRunning(c.rec)
	}
	pids, err := r.containerPids(c.rec, st)
	if err != nil {
		return nil, err
	}
	h, err := newProcHost()
	if err != nil {
		return nil, err
	}
	res := &TopResult{Titles: make([]string, len(cols)), Processes: [][]string{}}
	for i, col := range cols {
		res.Titles[i] = col.title
	}
	for _, pid := range pids {
		p, err := readProc(pid)
		if err != nil {
			continue // exited meanwhile
		}
		row := make([]string, len(cols))
		for i, col := range cols {
			row[i] = col.render(p, h)
		}
		res.Processes = append(res.Processes, row)
	}
	return res, nil
}

// containerPids lists the processes of a running container: those of its
// cgroup or, when that is out of this process's reach, those in its PID
// namespace.
func (r *Runtime) containerPids(rec *containerRecord, st *containerState) ([]int, error) {
	cg, err := r.liveCgroup(rec, st)
	if err == nil {
		return cg.Procs()
	}
	if rec.Spec.PidMode != "" {
		return nil, err
	}
	ns, nerr := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", st.Init.PID))
	if nerr != nil || !st.Init.Alive() {
		return nil, notRunning(rec)
	}
	ents, rerr := os.ReadDir("/proc")
	if rerr != nil {
		return nil, rerr
	}
	var pids []int
	for _, e := range ents {
		pid, perr := strconv.Atoi(e.Name())
		if perr != nil {
			continue
		}
		if l, err := os.Readlink("/proc/" + e.Name() + "/ns/pid"); err == nil && l == ns {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// procInfo is what Top shows of one process.
type procInfo struct {
	pid, ppid, pgrp, session, tpgid int
	state                           byte
	comm                            string
	cmdline                         []string
	ttyNr                           int
	utime, stime                    uint64 // clock ticks
	nice, threads                   int
	start                           uint64 // clock ticks after boot
	vsize                           uint64 // bytes
	rssKiB                          uint64
	uid, gid                        int
	locked                          bool
}

// readProc reads /proc/PID/stat, status and cmdline.
func readProc(pid int) (*procInfo, error) {
	dir := "/proc/" + strconv.Itoa(pid)
	b, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return nil, err
	}
	p, err := parseStat(pid, b)
	if err != nil {
		return nil, err
	}
	if b, err := os.ReadFile(dir + "/status"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			k, v, _ := strings.Cut(line, ":")
			f := strings.Fields(v)
			switch {
			case k == "Uid" && len(f) > 1:
				p.uid, _ = strconv.Atoi(f[1])
			case k == "Gid" && len(f) > 1:
				p.gid, _ = strconv.Atoi(f[1])
			case k == "VmLck" && len(f) > 0:
				p.locked = f[0] != "0"
			case k == "VmRSS" && len(f) > 0:
				p.rssKiB, _ = strconv.ParseUint(f[0], 10, 64)
			}
		}
	}
	if b, err := os.ReadFile(dir + "/cmdline"); err == nil && len(b) > 0 {
		p.cmdline = strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
	}
	return p, nil
}

// parseStat parses /proc/PID/stat; the command name is in parentheses
// and may hold spaces and parentheses itself.
func parseStat(pid int, b []byte) (*procInfo, error) {
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return nil, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	f := strings.Fields(string(b[end+1:]))
	if len(f) < 22 {
		return nil, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	num := func(i int) int64 { v, _ := strconv.ParseInt(f[i], 10, 64); return v }
	unum := func(i int) uint64 { v, _ := strconv.ParseUint(f[i], 10, 64); return v }
	// f[0] is field 3 (state).
	p := &procInfo{pid: pid, comm: string(b[open+1 : end]), state: f[0][0],
		ppid: int(num(1)), pgrp: int(num(2)), session: int(num(3)), ttyNr: int(num(4)), tpgid: int(num(5)),
		utime: unum(11), stime: unum(12), nice: int(num(16)), threads: int(num(17)), start: unum(19),
		vsize: unum(20)}
	p.rssKiB = unum(21) * uint64(os.Getpagesize()) / 1024
	return p, nil
}

// args is the process's command line, or "[comm]" for a process without
// one, as ps shows them.
func (p *procInfo) args() string {
	if len(p.cmdline) == 0 {
		if p.state == 'Z' {
			return "[" + p.comm + "] <defunct>"
		}
		return "[" + p.comm + "]"
	}
	return strings.Join(p.cmdline, " ")
}

// stat is ps's STAT: the state and its BSD flags.
func (p *procInfo) stat() string {
	s := []byte{p.state}
	switch {
	case p.nice < 0:
		s = append(s, '<')
	case p.nice > 0:
		s = append(s, 'N')
	}
	if p.locked {
		s = append(s, 'L')
	}
	if p.session == p.pid {
		s = append(s, 's')
	}
	if p.threads > 1 {
		s = append(s, 'l')
	}
	if p.tpgid == p.pgrp && p.tpgid > 0 {
		s = append(s, '+')
	}
	return string(s)
}

// procHost is what rendering needs of the host: boot time, uptime,
// memory, and user and group names.
type procHost struct {
	now         time.Time
	bootTime    int64   // seconds since the epoch
	uptime      float64 // seconds
	memTotalKiB uint64
	users       map[int]string
	groups      map[int]string
}

func newProcHost() (*procHost, error) {
	h := &procHost{now: time.Now()}
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return nil, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			h.bootTime, _ = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	if b, err := os.ReadFile("/proc/uptime"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 0 {
			h.uptime, _ = strconv.ParseFloat(f[0], 64)
		}
	}
	h.memTotalKiB = uint64(memTotal()) / 1024
	// ps runs on the host in docker, so names come from the host's files.
	h.users = readIDNames("/etc/passwd")
	h.groups = readIDNames("/etc/group")
	return h, nil
}

// readIDNames reads the name of each ID from a passwd or group file.
func readIDNames(path string) map[int]string {
	out := map[int]string{}
	f, err := os.Open(path)
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.Split(sc.Text(), ":")
		if len(parts) < 3 {
			continue
		}
		if id, err := strconv.Atoi(parts[2]); err == nil {
			if _, dup := out[id]; !dup {
				out[id] = parts[0]
			}
		}
	}
	return out
}

func (h *procHost) userName(uid int) string {
	if n, ok := h.users[uid]; ok {
		if len(n) > 8 { // ps's column width: long names are cut with a +
			return n[:7] + "+"
		}
		return n
	}
	return strconv.Itoa(uid)
}

func (h *procHost) groupName(gid int) string {
	if n, ok := h.groups[gid]; ok {
		return n
	}
	return strconv.Itoa(gid)
}

// elapsed is the time since the process started.
func (h *procHost) elapsed(p *procInfo) time.Duration {
	s := h.uptime - float64(p.start)/clockTicks
	if s < 0 {
		s = 0
	}
	return time.Duration(s * float64(time.Second))
}

// permille is the process's CPU use over its lifetime in tenths of a
// percent, as ps computes %CPU and C.
func (h *procHost) permille(p *procInfo) uint64 {
	secs := uint64(h.elapsed(p) / time.Second)
	if secs == 0 {
		return 0
	}
	return (p.utime + p.stime) * 1000 / clockTicks / secs
}

// startTime is ps's STIME: the time of day for a process started today,
// the month and day for one started this year, else the year.
func (h *procHost) startTime(p *procInfo) string {
	t := time.Unix(h.bootTime+int64(p.start/clockTicks), 0).Local()
	now := h.now.Local()
	switch {
	case t.Year() != now.Year():
		return t.Format("2006")
	case t.YearDay() != now.YearDay():
		return t.Format("Jan02")
	}
	return t.Format("15:04")
}

// cpuTime is ps's TIME: [DD-]HH:MM:SS of CPU time.
func cpuTime(ticks uint64) string {
	s := ticks / clockTicks
	if d := s / 86400; d > 0 {
		return fmt.Sprintf("%d-%02d:%02d:%02d", d, s/3600%24, s/60%60, s%60)
	}
	return fmt.Sprintf("%02d:%02d:%02d", s/3600, s/60%60, s%60)
}

// elapsed is ps's ELAPSED: [[DD-]hh:]mm:ss.
func elapsed(d time.Duration) string {
	s := int64(d / time.Second)
	switch {
	case s >= 86400:
		return fmt.Sprintf("%d-%02d:%02d:%02d", s/86400, s/3600%24, s/60%60, s%60)
	case s >= 3600:
		return fmt.Sprintf("%02d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%02d:%02d", s/60, s%60)
}

// ttyName names a controlling terminal from its device number, as ps
// does for the common ones; "?" for none.
func ttyName(nr int) string {
	if nr == 0 {
		return "?"
	}
	major := (nr >> 8) & 0xfff
	minor := (nr & 0xff) | ((nr >> 12) & 0xfff00)
	switch {
	case major >= 136 && major <= 143:
		return "pts/" + strconv.Itoa((major-136)*256+minor)
	case major == 4 && minor < 64:
		return "tty" + strconv.Itoa(minor)
	case major == 4:
		return "ttyS" + strconv.Itoa(minor-64)
	case major == 5 && minor == 1:
		return "console"
	}
	return "?"
}
