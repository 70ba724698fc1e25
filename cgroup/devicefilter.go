package cgroup

import (
	"encoding/binary"
	"fmt"
)

// cgroup v2 has no devices controller: device access is decided by an eBPF
// program of type BPF_PROG_TYPE_CGROUP_DEVICE attached to the cgroup. This
// file generates that program from the OCI rules; device_linux.go loads
// and attaches it.
//
// The program sees struct bpf_cgroup_dev_ctx { u32 access_type; u32 major;
// u32 minor; }, access_type being (access << 16) | type, and returns 1 to
// allow. It decides each requested access bit (mknod, read, write) on its
// own, the way OCI rules read: the last rule that matches the device and
// names the bit allows or denies it; no matching rule denies. A request is
// allowed when every one of its bits is.

// bpfInsn is one eBPF instruction.
type bpfInsn struct {
	code uint8
	regs uint8 // dst | src<<4
	off  int16
	imm  int32
}

// Opcodes used here.
const (
	bpfLdxMemW = 0x61 // dst = *(u32 *)(src + off)
	bpfAndK32  = 0x54 // dst = (u32)dst & imm
	bpfRshK32  = 0x74 // dst = (u32)dst >> imm
	bpfMovK64  = 0xb7 // dst = imm
	bpfJa      = 0x05 // pc += off
	bpfJneK    = 0x55 // if dst != imm: pc += off
	bpfJsetK   = 0x45 // if dst & imm: pc += off
	bpfExit    = 0x95 // return r0
)

// Values of bpf_cgroup_dev_ctx.
const (
	devcgBlock = 1
	devcgChar  = 2
	devcgMknod = 1
	devcgRead  = 2
	devcgWrite = 4
)

// Registers the program keeps the request in.
const (
	regRet    = 0
	regCtx    = 1
	regType   = 2
	regAccess = 3
	regMajor  = 4
	regMinor  = 5
)

// maxDeviceRules bounds the program (3 blocks of ~6 instructions a rule,
// far below the verifier's limits).
const maxDeviceRules = 4096

// deviceProgram compiles rules (in OCI order) into the filter.
func deviceProgram(rules []deviceRule) ([]bpfInsn, error) {
	if len(rules) > maxDeviceRules {
		return nil, invalidf("%d device rules: at most %d", len(rules), maxDeviceRules)
	}
	var p progBuilder
	p.emit(bpfInsn{code: bpfLdxMemW, regs: regType | regCtx<<4, off: 0})
	p.emit(bpfInsn{code: bpfAndK32, regs: regType, imm: 0xffff})
	p.emit(bpfInsn{code: bpfLdxMemW, regs: regAccess | regCtx<<4, off: 0})
	p.emit(bpfInsn{code: bpfRshK32, regs: regAccess, imm: 16})
	p.emit(bpfInsn{code: bpfLdxMemW, regs: regMajor | regCtx<<4, off: 4})
	p.emit(bpfInsn{code: bpfLdxMemW, regs: regMinor | regCtx<<4, off: 8})
	for _, bit := range []struct {
		mask   int32
		letter byte
	}{{devcgMknod, 'm'}, {devcgRead, 'r'}, {devcgWrite, 'w'}} {
		next := p.newLabel()
		// Not requested: on to the next bit.
		p.emit(bpfInsn{code: bpfJsetK, regs: regAccess, off: 1, imm: bit.mask})
		p.jump(bpfInsn{code: bpfJa}, next)
		decided := false
		for i := len(rules) - 1; i >= 0 && !decided; i-- {
			r := rules[i]
			if !hasByte(r.access, bit.letter) {
				continue
			}
			skip := p.newLabel()
			conds := 0
			if r.typ != 'a' {
				typ := int32(devcgChar)
				if r.typ == 'b' {
					typ = devcgBlock
				}
				p.jump(bpfInsn{code: bpfJneK, regs: regType, imm: typ}, skip)
				conds++
			}
			if r.major >= 0 {
				p.jump(bpfInsn{code: bpfJneK, regs: regMajor, imm: int32(r.major)}, skip)
				conds++
			}
			if r.minor >= 0 {
				p.jump(bpfInsn{code: bpfJneK, regs: regMinor, imm: int32(r.minor)}, skip)
				conds++
			}
			if r.allow {
				p.jump(bpfInsn{code: bpfJa}, next)
			} else {
				p.emit(bpfInsn{code: bpfMovK64, regs: regRet, imm: 0})
				p.emit(bpfInsn{code: bpfExit})
			}
			if conds == 0 {
				// Matches every device: earlier rules cannot matter
				// (and code after it would be unreachable, which the
				// verifier refuses).
				decided = true
				p.unused(skip)
				continue
			}
			p.mark(skip)
		}
		if !decided {
			p.emit(bpfInsn{code: bpfMovK64, regs: regRet, imm: 0})
			p.emit(bpfInsn{code: bpfExit})
		}
		p.mark(next)
	}
	p.emit(bpfInsn{code: bpfMovK64, regs: regRet, imm: 1})
	p.emit(bpfInsn{code: bpfExit})
	return p.finish()
}

func hasByte(s string, c byte) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return true
		}
	}
	return false
}

// progBuilder assembles instructions with forward jumps to labels.
type progBuilder struct {
	insns  []bpfInsn
	labels []int         // label -> instruction index, -1 until marked
	fixups map[int][]int // label -> jumps to patch
}

func (p *progBuilder) emit(i bpfInsn) { p.insns = append(p.insns, i) }

func (p *progBuilder) newLabel() int {
	p.labels = append(p.labels, -1)
	return len(p.labels) - 1
}

func (p *progBuilder) jump(i bpfInsn, label int) {
	if p.fixups == nil {
		p.fixups = make(map[int][]int)
	}
	p.fixups[label] = append(p.fixups[label], len(p.insns))
	p.emit(i)
}

func (p *progBuilder) mark(label int) { p.labels[label] = len(p.insns) }

// unused retires a label nothing jumps to.
func (p *progBuilder) unused(label int) { p.labels[label] = -2 }

func (p *progBuilder) finish() ([]bpfInsn, error) {
	for label, jumps := range p.fixups {
		at := p.labels[label]
		for _, j := range jumps {
			if at < 0 {
				return nil, fmt.Errorf("device filter: jump to an unplaced label")
			}
			off := at - j - 1
			if off > 32767 {
				return nil, invalidf("device filter: too many rules")
			}
			p.insns[j].off = int16(off)
		}
	}
	return p.insns, nil
}

// encodeProgram lays instructions out as the kernel reads them: struct
// bpf_insn in the machine's byte order, whose register bit fields put the
// destination in the low nibble on little-endian machines and in the high
// one on big-endian machines.
func encodeProgram(insns []bpfInsn) []byte {
	bigEndian := binary.NativeEndian.Uint16([]byte{0, 1}) == 1
	b := make([]byte, 0, 8*len(insns))
	for _, i := range insns {
		regs := i.regs
		if bigEndian {
			regs = regs<<4 | regs>>4
		}
		b = append(b, i.code, regs)
		b = binary.NativeEndian.AppendUint16(b, uint16(i.off))
		b = binary.NativeEndian.AppendUint32(b, uint32(i.imm))
	}
	return b
}
