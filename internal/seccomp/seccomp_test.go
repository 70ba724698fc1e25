package seccomp

import (
	"fmt"
	"math/rand"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

var amd64 = Arches["amd64"]

func nr(t *testing.T, name string) uint32 {
	t.Helper()
	n, ok := amd64.Syscalls[name]
	if !ok {
		t.Fatalf("no syscall %q", name)
	}
	return n
}

func eval(t *testing.T, p *Program, d seccompData) uint32 {
	t.Helper()
	if d.arch == 0 {
		d.arch = amd64.Audit
	}
	r, err := interpret(p.Instructions, d.bytes())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func uptr(v uint) *uint { return &v }

func TestActions(t *testing.T) {
	s := &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"mkdir", "rmdir"}, Action: specs.ActErrno},
			{Names: []string{"chmod"}, Action: specs.ActErrno, ErrnoRet: uptr(uint(unix.ENOSYS))},
			{Names: []string{"kill"}, Action: specs.ActKillProcess},
			{Names: []string{"tkill"}, Action: specs.ActKill},
			{Names: []string{"getpid"}, Action: specs.ActTrap},
			{Names: []string{"gettid"}, Action: specs.ActLog},
			{Names: []string{"getppid"}, Action: specs.ActTrace, ErrnoRet: uptr(7)},
			{Names: []string{"no_such_syscall", "getuid"}, Action: specs.ActErrno, ErrnoRet: uptr(9)},
		},
	}
	p, err := CompileFor(s, amd64)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		want uint32
	}{
		{"mkdir", RetErrno | 1}, {"rmdir", RetErrno | 1}, {"chmod", RetErrno | uint32(unix.ENOSYS)},
		{"kill", RetKillProcess}, {"tkill", RetKillThread}, {"getpid", RetTrap}, {"gettid", RetLog},
		{"getppid", RetTrace | 7}, {"getuid", RetErrno | 9}, {"read", RetAllow}, {"write", RetAllow},
	} {
		if got := eval(t, p, seccompData{nr: nr(t, tc.name)}); got != tc.want {
			t.Errorf("%s: %#x, want %#x", tc.name, got, tc.want)
		}
	}
	// Other architectures and x32 numbers get the default action.
	if got := eval(t, p, seccompData{nr: nr(t, "mkdir"), arch: 0x40000003}); got != RetAllow {
		t.Errorf("i386 mkdir: %#x", got)
	}
	if got := eval(t, p, seccompData{nr: nr(t, "mkdir") | 0x40000000}); got != RetAllow {
		t.Errorf("x32 mkdir: %#x", got)
	}
}

func TestDefaultErrnoRet(t *testing.T) {
	s := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: uptr(38),
		Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActAllow}}}
	p, err := CompileFor(s, amd64)
	if err != nil {
		t.Fatal(err)
	}
	if got := eval(t, p, seccompData{nr: nr(t, "write")}); got != RetErrno|38 {
		t.Fatalf("%#x", got)
	}
	if got := eval(t, p, seccompData{nr: nr(t, "read")}); got != RetAllow {
		t.Fatalf("%#x", got)
	}
}

// holds evaluates a comparison the way the kernel filter should.
func holds(op specs.LinuxSeccompOperator, arg, v, v2 uint64) bool {
	switch op {
	case specs.OpEqualTo:
		return arg == v
	case specs.OpNotEqual:
		return arg != v
	case specs.OpGreaterThan:
		return arg > v
	case specs.OpGreaterEqual:
		return arg >= v
	case specs.OpLessThan:
		return arg < v
	case specs.OpLessEqual:
		return arg <= v
	case specs.OpMaskedEqual:
		return arg&v == v2
	}
	panic(op)
}

func TestArgumentComparisons(t *testing.T) {
	edges := []uint64{0, 1, 2, 0x7fffffff, 0x80000000, 0xffffffff, 0x100000000, 0x100000001, 0x1ffffffff, 0xffffffff00000000, 0xffffffffffffffff, 0xfffffffffffffffe}
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 20; i++ {
		edges = append(edges, rng.Uint64(), uint64(rng.Uint32()), rng.Uint64()&0xffffffff00000000)
	}
	ops := []specs.LinuxSeccompOperator{specs.OpEqualTo, specs.OpNotEqual, specs.OpGreaterThan, specs.OpGreaterEqual, specs.OpLessThan, specs.OpLessEqual, specs.OpMaskedEqual}
	for _, op := range ops {
		for _, v := range edges {
			v2 := v & 0xff0000ff000000ff
			s := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{
				Names: []string{"ioctl"}, Action: specs.ActErrno,
				Args: []specs.LinuxSeccompArg{{Index: 1, Value: v, ValueTwo: v2, Op: op}},
			}}}
			p, err := CompileFor(s, amd64)
			if err != nil {
				t.Fatal(err)
			}
			for _, arg := range edges {
				var d seccompData
				d.nr = nr(t, "ioctl")
				d.args[1] = arg
				d.args[0] = ^arg // other arguments do not matter
				want := uint32(RetAllow)
				if holds(op, arg, v, v2) {
					want = RetErrno | 1
				}
				if got := eval(t, p, d); got != want {
					t.Fatalf("%s value %#x (%#x): arg %#x gave %#x, want %#x", op, v, v2, arg, got, want)
				}
			}
		}
	}
}

func TestRulesAndOr(t *testing.T) {
	s := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
		// Two arguments in one rule: both must hold.
		{Names: []string{"socket"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{
			{Index: 0, Value: 1, Op: specs.OpEqualTo}, {Index: 1, Value: 2, Op: specs.OpEqualTo}}},
		// The same argument twice: either may hold (runc's behaviour).
		{Names: []string{"personality"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{
			{Index: 0, Value: 0, Op: specs.OpEqualTo}, {Index: 0, Value: 8, Op: specs.OpEqualTo}}},
		// Separate entries for one syscall are ORed.
		{Names: []string{"personality"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{
			{Index: 0, Value: 0xffffffff, Op: specs.OpEqualTo}}},
	}}
	p, err := CompileFor(s, amd64)
	if err != nil {
		t.Fatal(err)
	}
	check := func(name string, args [6]uint64, want uint32) {
		t.Helper()
		if got := eval(t, p, seccompData{nr: nr(t, name), args: args}); got != want {
			t.Errorf("%s%v: %#x, want %#x", name, args[:2], got, want)
		}
	}
	check("socket", [6]uint64{1, 2}, RetAllow)
	check("socket", [6]uint64{1, 3}, RetErrno|1)
	check("socket", [6]uint64{2, 2}, RetErrno|1)
	check("personality", [6]uint64{0}, RetAllow)
	check("personality", [6]uint64{8}, RetAllow)
	check("personality", [6]uint64{0xffffffff}, RetAllow)
	check("personality", [6]uint64{9}, RetErrno|1)
	check("read", [6]uint64{}, RetErrno|1)
}

func TestLongJumps(t *testing.T) {
	// Many rules with arguments push targets past 255 instructions.
	var scs []specs.LinuxSyscall
	i := 0
	for name := range amd64.Syscalls {
		if i++; i > 300 {
			break
		}
		scs = append(scs, specs.LinuxSyscall{Names: []string{name}, Action: specs.ActAllow,
			Args: []specs.LinuxSeccompArg{{Index: 2, Value: uint64(i), Op: specs.OpEqualTo}}})
	}
	p, err := CompileFor(&specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: scs}, amd64)
	if err != nil {
		t.Fatal(err)
	}
	for k, sc := range scs {
		var d seccompData
		d.nr = amd64.Syscalls[sc.Names[0]]
		d.args[2] = uint64(k + 1)
		if got := eval(t, p, d); got != RetAllow {
			t.Fatalf("%s with its value: %#x", sc.Names[0], got)
		}
		d.args[2] = uint64(k + 2)
		if got := eval(t, p, d); got != RetErrno|1 {
			t.Fatalf("%s with another value: %#x", sc.Names[0], got)
		}
	}
}

func TestErrors(t *testing.T) {
	for i, s := range []*specs.LinuxSeccomp{
		{DefaultAction: "SCMP_ACT_BOGUS"},
		{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActNotify}}},
		{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 6, Op: specs.OpEqualTo}}}}},
		{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 0, Op: "SCMP_CMP_BOGUS"}}}}},
		{DefaultAction: specs.ActAllow, Flags: []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_BOGUS"}},
	} {
		if _, err := CompileFor(s, amd64); err == nil {
			t.Errorf("case %d: no error", i)
		}
	}
	p, err := CompileFor(&specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Flags: []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog, specs.LinuxSeccompFlagSpecAllow}}, amd64)
	if err != nil || p.Flags != FlagLog|FlagSpecAllow {
		t.Fatalf("flags: %v %v", p, err)
	}
	_ = fmt.Sprint
}
