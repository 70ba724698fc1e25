package archive

import (
	"context"
	"io"
)

// readahead reads its source in a goroutine of its own, up to depth blocks
// ahead of its consumer, so that decompressing and hashing a layer overlap
// with writing its files. Only one goroutine may call Read; stop must be
// called before the source is closed or dropped.
type readahead struct {
	ctx    context.Context // Read gives up when it is done
	size   int             // the largest block
	alloc  int             // buffers allocated so far, at most depth+1
	full   chan raBlock    // filled blocks, in order
	free   chan []byte     // buffers to fill
	done   chan struct{}   // closed by stop
	exited chan struct{}   // closed when the reading goroutine returns
	cur    []byte          // unread part of the current block
	curBuf []byte          // the current block's buffer
	err    error           // error that ended the current block
}

type raBlock struct {
	b   []byte
	n   int
	err error
}

func newReadahead(ctx context.Context, r io.Reader, size, depth int) *readahead {
	ra := &readahead{
		ctx:    ctx,
		size:   size,
		full:   make(chan raBlock, depth),
		free:   make(chan []byte, depth+1),
		done:   make(chan struct{}),
		exited: make(chan struct{}),
	}
	go ra.run(r)
	return ra
}

func (ra *readahead) run(r io.Reader) {
	defer close(ra.exited)
	for {
		var buf []byte
		select {
		case buf = <-ra.free:
		default:
			// Buffers are made as needed, small ones first, so that a
			// small layer costs little memory.
			if ra.alloc < cap(ra.free) {
				buf = make([]byte, min(ra.size, 64<<10<<(2*ra.alloc)))
				ra.alloc++
				break
			}
			select {
			case buf = <-ra.free:
			case <-ra.done:
				return
			}
		}
		n := 0
		var err error
		for n < len(buf) && err == nil {
			var m int
			m, err = r.Read(buf[n:])
			n += m
		}
		select {
		case ra.full <- raBlock{b: buf, n: n, err: err}:
		case <-ra.done:
			return
		}
		if err != nil {
			return
		}
	}
}

// Read returns data in the order the source gave it, then the source's
// error; or ctx's error once ctx is done.
func (ra *readahead) Read(p []byte) (int, error) {
	for len(ra.cur) == 0 {
		if ra.err != nil {
			return 0, ra.err
		}
		if ra.curBuf != nil {
			ra.free <- ra.curBuf // never blocks: there are at most depth+1 buffers
			ra.curBuf = nil
		}
		var blk raBlock
		select {
		case blk = <-ra.full:
		case <-ra.ctx.Done():
			return 0, ra.ctx.Err()
		}
		ra.curBuf, ra.cur, ra.err = blk.b, blk.b[:blk.n], blk.err
	}
	n := copy(p, ra.cur)
	ra.cur = ra.cur[n:]
	return n, nil
}

// stop ends the reading goroutine, waiting for a Read of the source that
// is under way to return. After stop, nothing touches the source.
func (ra *readahead) stop() {
	select {
	case <-ra.done:
	default:
		close(ra.done)
	}
	<-ra.exited
}
