package seccomp

import (
	"encoding/binary"
	"fmt"
)

// seccompData is struct seccomp_data.
type seccompData struct {
	nr   uint32
	arch uint32
	ip   uint64
	args [6]uint64
}

func (d *seccompData) bytes() []byte {
	b := make([]byte, 64)
	binary.LittleEndian.PutUint32(b[0:], d.nr)
	binary.LittleEndian.PutUint32(b[4:], d.arch)
	binary.LittleEndian.PutUint64(b[8:], d.ip)
	for i, a := range d.args {
		binary.LittleEndian.PutUint64(b[16+8*i:], a)
	}
	return b
}

// interpret runs a classic BPF program over data as the kernel's seccomp
// does (the subset of instructions a filter may use).
func interpret(prog []Instruction, data []byte) (uint32, error) {
	var a, x uint32
	var mem [16]uint32
	for pc := 0; pc < len(prog); pc++ {
		in := prog[pc]
		class := in.Code & 0x07
		switch class {
		case 0x00: // LD
			switch in.Code {
			case 0x20: // W ABS
				if int(in.K)+4 > len(data) || in.K%4 != 0 {
					return 0, fmt.Errorf("pc %d: bad load offset %d", pc, in.K)
				}
				a = binary.LittleEndian.Uint32(data[in.K:])
			case 0x00: // IMM
				a = in.K
			case 0x60: // MEM
				a = mem[in.K]
			default:
				return 0, fmt.Errorf("pc %d: unsupported load %#x", pc, in.Code)
			}
		case 0x01: // LDX
			x = in.K
		case 0x02: // ST
			mem[in.K] = a
		case 0x04: // ALU
			v := in.K
			if in.Code&0x08 != 0 {
				v = x
			}
			switch in.Code & 0xf0 {
			case 0x00:
				a += v
			case 0x10:
				a -= v
			case 0x50:
				a &= v
			case 0x40:
				a |= v
			default:
				return 0, fmt.Errorf("pc %d: unsupported alu %#x", pc, in.Code)
			}
		case 0x05: // JMP
			if in.Code == 0x05 {
				pc += int(in.K)
				break
			}
			var cond bool
			switch in.Code & 0xf0 {
			case 0x10:
				cond = a == in.K
			case 0x20:
				cond = a > in.K
			case 0x30:
				cond = a >= in.K
			case 0x40:
				cond = a&in.K != 0
			default:
				return 0, fmt.Errorf("pc %d: unsupported jump %#x", pc, in.Code)
			}
			if cond {
				pc += int(in.Jt)
			} else {
				pc += int(in.Jf)
			}
		case 0x06: // RET
			return in.K, nil
		default:
			return 0, fmt.Errorf("pc %d: unsupported class %#x", pc, in.Code)
		}
	}
	return 0, fmt.Errorf("fell off the end of the program")
}
