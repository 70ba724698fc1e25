// Package seccomp compiles an OCI seccomp configuration (specs.LinuxSeccomp)
// into a classic BPF program for seccomp(2), in Go, without libseccomp.
//
// The program checks the architecture, then finds the syscall number with
// a binary search and runs that syscall's rules in order: a rule without
// arguments decides at once, a rule with arguments decides when all its
// comparisons hold (64-bit values are compared as two 32-bit halves), and
// a syscall none of whose rules matched gets the default action. Syscalls
// of other architectures (32-bit x86 on amd64, x32) get the default
// action too; names the architecture does not know are skipped, as runc
// does.
package seccomp

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"sort"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-run/berth/internal/errdefs"
)

// Return values of a filter (linux/seccomp.h).
const (
	RetKillProcess = 0x80000000
	RetKillThread  = 0x00000000
	RetTrap        = 0x00030000
	RetErrno       = 0x00050000
	RetUserNotif   = 0x7fc00000
	RetTrace       = 0x7ff00000
	RetLog         = 0x7ffc0000
	RetAllow       = 0x7fff0000
)

// Filter flags for seccomp(SECCOMP_SET_MODE_FILTER).
const (
	FlagLog              = 1 << 1
	FlagSpecAllow        = 1 << 2
	FlagWaitKillableRecv = 1 << 5
)

// Instruction is one classic BPF instruction (struct sock_filter).
type Instruction struct {
	Code uint16
	Jt   uint8
	Jf   uint8
	K    uint32
}

// Program is a compiled filter.
type Program struct {
	Instructions []Instruction
	// Flags are the seccomp(2) filter flags.
	Flags uint
}

// Arch describes an architecture the compiler knows.
type Arch struct {
	// Audit is the AUDIT_ARCH_* value in seccomp_data.arch.
	Audit uint32
	// Syscalls maps names to numbers.
	Syscalls map[string]uint32
	// X32Bit is the bit that marks x32 syscalls (amd64), or 0.
	X32Bit uint32
}

// Arches the compiler can target, by GOARCH.
var Arches = map[string]Arch{
	"amd64": {Audit: 0xc000003e, Syscalls: syscallsAmd64, X32Bit: 0x40000000},
	"arm64": {Audit: 0xc00000b7, Syscalls: syscallsArm64},
}

// maxInstructions is the kernel's BPF_MAXINSNS.
const maxInstructions = 4096

// Compile compiles s for the architecture this program runs on.
func Compile(s *specs.LinuxSeccomp) (*Program, error) {
	a, ok := Arches[runtime.GOARCH]
	if !ok {
		return nil, errdefs.New(errdefs.ErrNotSupported, "seccomp: architecture "+runtime.GOARCH+" is not supported")
	}
	return CompileFor(s, a)
}

// rule is one OR-branch of a syscall: all conds must hold.
type rule struct {
	conds  []specs.LinuxSeccompArg
	action uint32
}

// CompileFor compiles s for the architecture a.
func CompileFor(s *specs.LinuxSeccomp, a Arch) (*Program, error) {
	if s == nil {
		return nil, nil
	}
	def, err := action(s.DefaultAction, s.DefaultErrnoRet)
	if err != nil {
		return nil, fmt.Errorf("seccomp default action: %w", err)
	}
	var flags uint
	for _, f := range s.Flags {
		switch f {
		case specs.LinuxSeccompFlagLog:
			flags |= FlagLog
		case specs.LinuxSeccompFlagSpecAllow:
			flags |= FlagSpecAllow
		case specs.LinuxSeccompFlagWaitKillableRecv:
			flags |= FlagWaitKillableRecv
		default:
			return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("seccomp: unknown flag %q", f))
		}
	}
	rules := map[uint32][]rule{}
	for _, sc := range s.Syscalls {
		act, err := action(sc.Action, sc.ErrnoRet)
		if err != nil {
			return nil, fmt.Errorf("seccomp syscalls %v: %w", sc.Names, err)
		}
		for _, arg := range sc.Args {
			if arg.Index > 5 {
				return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("seccomp: argument index %d out of range", arg.Index))
			}
			if _, err := opValid(arg.Op); err != nil {
				return nil, err
			}
		}
		if act == def && len(sc.Args) == 0 {
			// Same as the default: nothing to emit. (With arguments it
			// still matters: it stops later rules from matching.)
			for _, n := range sc.Names {
				if nr, ok := a.Syscalls[n]; ok {
					rules[nr] = append(rules[nr], rule{action: act})
				}
			}
			continue
		}
		for _, n := range sc.Names {
			nr, ok := a.Syscalls[n]
			if !ok {
				continue // unknown to this architecture: skipped like runc
			}
			rules[nr] = append(rules[nr], splitRule(sc.Args, act)...)
		}
	}
	prog, err := assemble(a, def, rules)
	if err != nil {
		return nil, err
	}
	return &Program{Instructions: prog, Flags: flags}, nil
}

// splitRule makes the rules of one syscall entry: one rule with all the
// comparisons, unless two compare the same argument — then, like runc,
// each comparison is a rule of its own (they are ORed).
func splitRule(args []specs.LinuxSeccompArg, act uint32) []rule {
	seen := map[uint]bool{}
	dup := false
	for _, a := range args {
		if seen[a.Index] {
			dup = true
		}
		seen[a.Index] = true
	}
	if !dup {
		return []rule{{conds: args, action: act}}
	}
	out := make([]rule, 0, len(args))
	for _, a := range args {
		out = append(out, rule{conds: []specs.LinuxSeccompArg{a}, action: act})
	}
	return out
}

func action(a specs.LinuxSeccompAction, errnoRet *uint) (uint32, error) {
	ret := uint32(1) // EPERM, runc's default for ERRNO and TRACE
	if errnoRet != nil {
		ret = uint32(*errnoRet) & 0xffff
	}
	switch a {
	case specs.ActKill, specs.ActKillThread:
		return RetKillThread, nil
	case specs.ActKillProcess:
		return RetKillProcess, nil
	case specs.ActTrap:
		return RetTrap, nil
	case specs.ActErrno:
		return RetErrno | ret, nil
	case specs.ActTrace:
		return RetTrace | ret, nil
	case specs.ActAllow:
		return RetAllow, nil
	case specs.ActLog:
		return RetLog, nil
	case specs.ActNotify:
		return 0, errdefs.New(errdefs.ErrNotSupported, "seccomp: SCMP_ACT_NOTIFY is not supported")
	}
	return 0, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("seccomp: unknown action %q", a))
}

func opValid(op specs.LinuxSeccompOperator) (bool, error) {
	switch op {
	case specs.OpEqualTo, specs.OpNotEqual, specs.OpGreaterThan, specs.OpGreaterEqual,
		specs.OpLessThan, specs.OpLessEqual, specs.OpMaskedEqual:
		return true, nil
	}
	return false, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("seccomp: unknown operator %q", op))
}

// Bytes encodes the program as an array of struct sock_filter in the
// host's byte order, ready for seccomp(2).
func (p *Program) Bytes() []byte {
	b := make([]byte, 8*len(p.Instructions))
	for i, in := range p.Instructions {
		binary.NativeEndian.PutUint16(b[8*i:], in.Code)
		b[8*i+2] = in.Jt
		b[8*i+3] = in.Jf
		binary.NativeEndian.PutUint32(b[8*i+4:], in.K)
	}
	return b
}

// sortedNumbers returns the keys of rules in increasing order.
func sortedNumbers(rules map[uint32][]rule) []uint32 {
	nrs := make([]uint32, 0, len(rules))
	for nr := range rules {
		nrs = append(nrs, nr)
	}
	sort.Slice(nrs, func(i, j int) bool { return nrs[i] < nrs[j] })
	return nrs
}
