package seccomp

import (
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-run/berth/internal/errdefs"
)

// Classic BPF opcodes used by the filters.
const (
	bpfLdWAbs = 0x20 // BPF_LD | BPF_W | BPF_ABS
	bpfAndK   = 0x54 // BPF_ALU | BPF_AND | BPF_K
	bpfJa     = 0x05 // BPF_JMP | BPF_JA
	bpfJeqK   = 0x15 // BPF_JMP | BPF_JEQ | BPF_K
	bpfJgtK   = 0x25 // BPF_JMP | BPF_JGT | BPF_K
	bpfJgeK   = 0x35 // BPF_JMP | BPF_JGE | BPF_K
	bpfRetK   = 0x06 // BPF_RET | BPF_K
)

// Offsets in struct seccomp_data (little-endian 64-bit arguments).
const (
	offNr   = 0
	offArch = 4
	offArgs = 16
)

// builder emits a program backwards, from its last instruction to its
// first, so that every jump goes to code that already exists and its
// distance is known. A label is the index of an instruction counted from
// the end of the program. Conditional jumps reach at most 255
// instructions ahead; further targets get an unconditional jump
// (32-bit offset) as a trampoline.
type builder struct {
	rev  []Instruction    // in reverse order
	rets map[uint32]label // the last "ret k" emitted, shared while in reach
}

type label int

// pos is the label the next emitted instruction will get.
func (b *builder) pos() label { return label(len(b.rev)) }

// next is the label of the instruction emitted last (the fall-through of
// the next one).
func (b *builder) next() label { return label(len(b.rev) - 1) }

func (b *builder) emit(in Instruction) label {
	b.rev = append(b.rev, in)
	return b.next()
}

func (b *builder) ret(k uint32) label { return b.emit(Instruction{Code: bpfRetK, K: k}) }

// sharedRet returns a "ret k" in reach of a conditional jump, emitting one
// only when the last is too far.
func (b *builder) sharedRet(k uint32) label {
	if l, ok := b.rets[k]; ok && b.dist(l) <= 255 {
		return l
	}
	if b.rets == nil {
		b.rets = map[uint32]label{}
	}
	l := b.ret(k)
	b.rets[k] = l
	return l
}

func (b *builder) load(off uint32) label { return b.emit(Instruction{Code: bpfLdWAbs, K: off}) }

func (b *builder) and(k uint32) label { return b.emit(Instruction{Code: bpfAndK, K: k}) }

// dist is the jump offset from the next emitted instruction to l.
func (b *builder) dist(l label) int { return int(b.pos()) - int(l) - 1 }

// jump emits "if A <op> k goto t else goto f".
func (b *builder) jump(op uint16, k uint32, t, f label) label {
	for b.dist(t) > 255 || b.dist(f) > 255 {
		if b.dist(t) > 255 {
			t = b.emit(Instruction{Code: bpfJa, K: uint32(b.dist(t))})
		}
		if b.dist(f) > 255 {
			f = b.emit(Instruction{Code: bpfJa, K: uint32(b.dist(f))})
		}
	}
	return b.emit(Instruction{Code: op, Jt: uint8(b.dist(t)), Jf: uint8(b.dist(f)), K: k})
}

// program returns the instructions in execution order.
func (b *builder) program() []Instruction {
	out := make([]Instruction, len(b.rev))
	for i, in := range b.rev {
		out[len(b.rev)-1-i] = in
	}
	return out
}

// assemble lays the program out as
//
//	load arch; if arch != a.Audit: default action
//	load nr; [x32 numbers: default action]
//	binary search on nr -> per-syscall rule block, or default action
//	per-syscall blocks: rule checks in order, then the default action
func assemble(a Arch, def uint32, rules map[uint32][]rule) ([]Instruction, error) {
	b := &builder{}
	lDefault := b.ret(def)
	// Drop syscalls whose first rule is an unconditional default.
	for nr, rs := range rules {
		if len(rs[0].conds) == 0 && rs[0].action == def {
			delete(rules, nr)
		}
	}
	nrs := sortedNumbers(rules)
	blocks := make(map[uint32]label, len(nrs))
	for i := len(nrs) - 1; i >= 0; i-- {
		l, err := b.syscallBlock(rules[nrs[i]], lDefault)
		if err != nil {
			return nil, err
		}
		blocks[nrs[i]] = l
	}
	lSearch := b.search(nrs, blocks, lDefault)
	if a.X32Bit != 0 {
		lSearch = b.jump(bpfJgeK, a.X32Bit, lDefault, lSearch)
	}
	lNr := b.load(offNr)
	b.jump(bpfJeqK, a.Audit, lNr, lDefault)
	b.load(offArch)
	if len(b.rev) > maxInstructions {
		return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("seccomp: filter needs %d instructions, more than the kernel's %d", len(b.rev), maxInstructions))
	}
	return b.program(), nil
}

// search emits a binary search over the sorted numbers nrs (A holds the
// syscall number) and returns its entry.
func (b *builder) search(nrs []uint32, blocks map[uint32]label, miss label) label {
	switch len(nrs) {
	case 0:
		return miss
	case 1:
		return b.jump(bpfJeqK, nrs[0], blocks[nrs[0]], miss)
	}
	// Small ranges: a chain of equality tests is shorter than a tree.
	if len(nrs) <= 4 {
		l := miss
		for i := len(nrs) - 1; i >= 0; i-- {
			l = b.jump(bpfJeqK, nrs[i], blocks[nrs[i]], l)
		}
		return l
	}
	mid := len(nrs) / 2
	right := b.search(nrs[mid:], blocks, miss)
	left := b.search(nrs[:mid], blocks, miss)
	return b.jump(bpfJgeK, nrs[mid], right, left)
}

// syscallBlock emits a syscall's rules; a rule that fails falls through
// to the next one, the last to the default action.
func (b *builder) syscallBlock(rs []rule, lDefault label) (label, error) {
	// An unconditional rule ends the list: later rules cannot match.
	for i, r := range rs {
		if len(r.conds) == 0 {
			rs = rs[:i+1]
			break
		}
	}
	next := lDefault
	for i := len(rs) - 1; i >= 0; i-- {
		r := rs[i]
		act := b.sharedRet(r.action)
		if len(r.conds) == 0 {
			next = act
			continue
		}
		pass := act
		for j := len(r.conds) - 1; j >= 0; j-- {
			l, err := b.cond(r.conds[j], pass, next)
			if err != nil {
				return 0, err
			}
			pass = l
		}
		next = pass
	}
	return next, nil
}

// cond emits one 64-bit comparison of an argument as two 32-bit ones and
// returns its entry; it continues at pass when the comparison holds and
// at fail otherwise.
func (b *builder) cond(c specs.LinuxSeccompArg, pass, fail label) (label, error) {
	lo := uint32(offArgs + 8*c.Index)
	hi := lo + 4
	vHi, vLo := uint32(c.Value>>32), uint32(c.Value)
	switch c.Op {
	case specs.OpEqualTo:
		b.jump(bpfJeqK, vLo, pass, fail)
		b.load(lo)
		b.jump(bpfJeqK, vHi, b.next(), fail)
		return b.load(hi), nil
	case specs.OpNotEqual:
		return b.cond(specs.LinuxSeccompArg{Index: c.Index, Value: c.Value, Op: specs.OpEqualTo}, fail, pass)
	case specs.OpGreaterThan, specs.OpGreaterEqual:
		op := uint16(bpfJgtK)
		if c.Op == specs.OpGreaterEqual {
			op = bpfJgeK
		}
		b.jump(op, vLo, pass, fail)
		lLo := b.load(lo)
		// hi > vHi: pass; hi == vHi: compare lo; hi < vHi: fail.
		b.jump(bpfJeqK, vHi, lLo, fail)
		b.jump(bpfJgtK, vHi, pass, b.next())
		return b.load(hi), nil
	case specs.OpLessThan:
		return b.cond(specs.LinuxSeccompArg{Index: c.Index, Value: c.Value, Op: specs.OpGreaterEqual}, fail, pass)
	case specs.OpLessEqual:
		return b.cond(specs.LinuxSeccompArg{Index: c.Index, Value: c.Value, Op: specs.OpGreaterThan}, fail, pass)
	case specs.OpMaskedEqual:
		mHi, mLo := uint32(c.Value>>32), uint32(c.Value)
		wHi, wLo := uint32(c.ValueTwo>>32), uint32(c.ValueTwo)
		b.jump(bpfJeqK, wLo, pass, fail)
		b.and(mLo)
		b.load(lo)
		b.jump(bpfJeqK, wHi, b.next(), fail)
		b.and(mHi)
		return b.load(hi), nil
	}
	return 0, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("seccomp: unknown operator %q", c.Op))
}
