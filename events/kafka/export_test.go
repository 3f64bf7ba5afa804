package kafka

import (
	"os"
	"sync/atomic"
	"syscall"
)

// FillingDisk makes the spool of a producer built from cfg write its
// segments to a disk that is full while the returned flag is set: a write
// stores part of its bytes and fails with ENOSPC, as on a real full disk.
func FillingDisk(cfg *ProducerConfig) (full *atomic.Bool) {
	full = new(atomic.Bool)
	cfg.createSegment = func(path string) (segmentFile, error) {
		f, err := createSegment(path)
		if err != nil {
			return nil, err
		}
		return &fillingFile{segmentFile: f, full: full}, nil
	}
	return full
}

type fillingFile struct {
	segmentFile
	full *atomic.Bool
}

func (f *fillingFile) Write(b []byte) (int, error) {
	if f.full.Load() {
		n, _ := f.segmentFile.Write(b[:len(b)/2])
		return n, &os.PathError{Op: "write", Path: "spool segment", Err: syscall.ENOSPC}
	}
	return f.segmentFile.Write(b)
}
