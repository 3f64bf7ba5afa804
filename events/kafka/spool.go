package kafka

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// record is one encoded event on its way to Kafka.
type record struct {
	topic string
	key   string
	value []byte
}

func (r record) size() int { return len(r.topic) + len(r.key) + len(r.value) + 3*binary.MaxVarintLen32 }

// spool is the producer's on-disk overflow: an append-only log of frames, one
// per batch the broker did not take, split into segment files so that replayed
// data is reclaimed by deleting whole files. A frame is
//
//	[u32 payload length][u32 CRC-32C of count+payload][u32 record count][payload]
//
// with the payload a sequence of (uvarint length, bytes) for topic, key, value.
// Every append is fsync'd, so a batch that reached the spool survives a crash
// of the process. A torn frame at the tail (crash mid-write) is cut off on
// open. Replay is at-least-once: the read position lives in memory, so after a
// crash the first unfinished segment is replayed from its start again; event
// ids let ClickHouse collapse the duplicates.
//
// spool is not safe for concurrent use; the producer's loop owns it.
type spool struct {
	dir      string
	maxBytes int64 // bound on the bytes of all segment files together
	segBytes int64 // roll to a new segment past this size

	segs    []int64     // segment sequence numbers, oldest first
	create  createFunc  // opens a new segment for writing
	w       segmentFile // active (last) segment, opened lazily on append
	wSize   int64       // size of the active segment
	r       *os.File    // read handle on segs[0]
	rOff    int64       // read position in segs[0]
	total   int64       // bytes of all segment files
	pending int64       // records appended and not yet consumed
	buf     []byte      // frame buffer reused across appends
}

// segmentFile is what the spool writes a segment through: an *os.File, or
// in tests a file whose disk fills up.
type segmentFile interface {
	io.WriteCloser
	Sync() error
	Truncate(size int64) error
}

// createFunc creates the segment file at path.
type createFunc func(path string) (segmentFile, error)

func createSegment(path string) (segmentFile, error) {
	return os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o644)
}

var (
	errSpoolFull = errors.New("spool full")
	crc32c       = crc32.MakeTable(crc32.Castagnoli)
)

const frameHeader = 12

func openSpool(dir string, maxBytes, segBytes int64, create createFunc) (*spool, error) {
	if create == nil {
		create = createSegment
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("spool dir: %w", err)
	}
	s := &spool{dir: dir, maxBytes: maxBytes, segBytes: segBytes, create: create}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("spool dir: %w", err)
	}
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".spool")
		if !ok {
			continue
		}
		if seq, err := strconv.ParseInt(name, 10, 64); err == nil {
			s.segs = append(s.segs, seq)
		}
	}
	slices.Sort(s.segs)
	// Count what earlier runs left behind and cut torn tails, so sizes and
	// pending counts are exact and appends start on a frame boundary.
	for _, seq := range s.segs {
		valid, n, err := scanSegment(s.path(seq))
		if err != nil {
			return nil, err
		}
		if err := os.Truncate(s.path(seq), valid); err != nil {
			return nil, fmt.Errorf("spool truncate torn tail: %w", err)
		}
		s.total += valid
		s.pending += n
	}
	return s, nil
}

func (s *spool) path(seq int64) string {
	return filepath.Join(s.dir, fmt.Sprintf("%020d.spool", seq))
}

// scanSegment returns the length of the valid frame prefix of a segment file
// and how many records it holds.
func scanSegment(path string) (valid, records int64, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, fmt.Errorf("spool scan: %w", err)
	}
	for {
		n, count, ok := parseFrame(b[valid:])
		if !ok {
			return valid, records, nil
		}
		valid += int64(n)
		records += int64(count)
	}
}

// parseFrame checks the frame at the start of b; it returns the frame's total
// length and record count, or ok=false for a short or corrupt frame.
func parseFrame(b []byte) (n int, count uint32, ok bool) {
	if len(b) < frameHeader {
		return 0, 0, false
	}
	plen := int(binary.LittleEndian.Uint32(b[0:4]))
	if plen > len(b)-frameHeader {
		return 0, 0, false
	}
	if crc32.Checksum(b[8:frameHeader+plen], crc32c) != binary.LittleEndian.Uint32(b[4:8]) {
		return 0, 0, false
	}
	return frameHeader + plen, binary.LittleEndian.Uint32(b[8:12]), true
}

func (s *spool) empty() bool { return s.pending == 0 }

// bytes is the on-disk size of the spool, consumed-but-not-yet-deleted data included.
func (s *spool) bytes() int64 { return s.total }

// append writes recs as one frame and fsyncs it. It returns errSpoolFull,
// writing nothing, when the frame would take the spool past maxBytes.
func (s *spool) append(recs []record) error {
	if len(recs) == 0 {
		return nil
	}
	size := frameHeader
	for _, r := range recs {
		size += r.size()
	}
	// Reuse one frame buffer: the spool runs while the broker is away, and
	// garbage made here would bring GC (and its write barriers) onto the
	// request path that is still calling Enqueue.
	buf := slices.Grow(s.buf[:0], size)[:frameHeader]
	defer func() {
		if cap(buf) <= 8<<20 {
			s.buf = buf[:0]
		}
	}()
	for _, r := range recs {
		buf = binary.AppendUvarint(buf, uint64(len(r.topic)))
		buf = append(buf, r.topic...)
		buf = binary.AppendUvarint(buf, uint64(len(r.key)))
		buf = append(buf, r.key...)
		buf = binary.AppendUvarint(buf, uint64(len(r.value)))
		buf = append(buf, r.value...)
	}
	if s.total+int64(len(buf)) > s.maxBytes {
		return errSpoolFull
	}
	binary.LittleEndian.PutUint32(buf[0:4], uint32(len(buf)-frameHeader))
	binary.LittleEndian.PutUint32(buf[8:12], uint32(len(recs)))
	binary.LittleEndian.PutUint32(buf[4:8], crc32.Checksum(buf[8:], crc32c))

	if s.w == nil || s.wSize >= s.segBytes {
		if err := s.roll(); err != nil {
			return err
		}
	}
	if _, err := s.w.Write(buf); err != nil {
		// Cut a partial write so the next frame starts on a boundary.
		_ = s.w.Truncate(s.wSize)
		return fmt.Errorf("spool write: %w", err)
	}
	if err := s.w.Sync(); err != nil {
		// The frame may be on disk without being counted: cut it, or a
		// replay would read it (and the producer send it again) as well as
		// the copy the producer still holds.
		_ = s.w.Truncate(s.wSize)
		return fmt.Errorf("spool sync: %w", err)
	}
	s.wSize += int64(len(buf))
	s.total += int64(len(buf))
	s.pending += int64(len(recs))
	return nil
}

// roll starts a new active segment after the newest existing one.
func (s *spool) roll() error {
	if s.w != nil {
		if err := s.w.Close(); err != nil {
			return fmt.Errorf("spool close segment: %w", err)
		}
		s.w = nil
	}
	seq := int64(1)
	if len(s.segs) > 0 {
		seq = s.segs[len(s.segs)-1] + 1
	}
	f, err := s.create(s.path(seq))
	if err != nil {
		return fmt.Errorf("spool new segment: %w", err)
	}
	// The new file's directory entry must be durable too, or an fsync'd
	// frame could vanish with its file after a crash.
	if d, err := os.Open(s.dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	s.segs = append(s.segs, seq)
	s.w, s.wSize = f, 0
	return nil
}

// spoolPos is a read position: a segment and a byte offset in it.
type spoolPos struct {
	seg int64
	off int64
}

// peek reads frames from the read position until it has at least max records
// or reaches the end, and returns them with the position after them. Nothing
// is consumed until advance.
func (s *spool) peek(max int) ([]record, spoolPos, error) {
	var out []record
	pos := spoolPos{off: s.rOff}
	for i := 0; i < len(s.segs) && len(out) < max; i++ {
		seq := s.segs[i]
		pos.seg = seq
		if i > 0 {
			pos.off = 0
		}
		f, err := s.reader(seq)
		if err != nil {
			return nil, pos, err
		}
		if seq != s.segs[0] {
			defer f.Close()
		}
		for len(out) < max {
			recs, n, err := readFrame(f, pos.off)
			if err != nil {
				return nil, pos, err
			}
			if n == 0 {
				break // end of this segment
			}
			out = append(out, recs...)
			pos.off += int64(n)
		}
		if len(out) >= max {
			break
		}
	}
	return out, pos, nil
}

// reader returns a read handle for segment seq; only the oldest segment
// keeps its handle open, later ones are opened per peek (rare: a peek
// crosses a segment boundary at most once per segment).
func (s *spool) reader(seq int64) (*os.File, error) {
	if seq == s.segs[0] && s.r != nil {
		return s.r, nil
	}
	f, err := os.Open(s.path(seq))
	if err != nil {
		return nil, fmt.Errorf("spool open: %w", err)
	}
	if seq == s.segs[0] {
		s.r = f
	}
	return f, nil
}

// readFrame reads the frame at off; n == 0 means there is no complete frame there.
func readFrame(f *os.File, off int64) ([]record, int, error) {
	var hdr [frameHeader]byte
	if _, err := f.ReadAt(hdr[:], off); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, 0, nil
		}
		return nil, 0, fmt.Errorf("spool read: %w", err)
	}
	buf := make([]byte, frameHeader+int(binary.LittleEndian.Uint32(hdr[0:4])))
	if _, err := f.ReadAt(buf, off); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, 0, nil
		}
		return nil, 0, fmt.Errorf("spool read: %w", err)
	}
	n, count, ok := parseFrame(buf)
	if !ok {
		return nil, 0, nil // torn tail: treated as the end, cut on next open
	}
	recs := make([]record, 0, count)
	p := buf[frameHeader:n]
	next := func() []byte {
		l, k := binary.Uvarint(p)
		b := p[k : k+int(l)]
		p = p[k+int(l):]
		return b
	}
	for range count {
		recs = append(recs, record{topic: string(next()), key: string(next()), value: next()})
	}
	return recs, n, nil
}

// advance consumes everything before pos (returned by peek, which read n
// records) and deletes segments that are fully consumed.
func (s *spool) advance(pos spoolPos, n int) error {
	s.pending -= int64(n)
	for len(s.segs) > 0 && s.segs[0] < pos.seg {
		if err := s.dropOldest(); err != nil {
			return err
		}
	}
	s.rOff = pos.off
	if s.pending == 0 {
		// Everything replayed: delete the files so the disk is given back
		// and the next outage starts a fresh segment.
		for len(s.segs) > 0 {
			if err := s.dropOldest(); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *spool) dropOldest() error {
	seq := s.segs[0]
	if s.r != nil {
		s.r.Close()
		s.r = nil
	}
	if len(s.segs) == 1 && s.w != nil {
		s.w.Close()
		s.w, s.wSize = nil, 0
	}
	fi, err := os.Stat(s.path(seq))
	if err == nil {
		s.total -= fi.Size()
	}
	if err := os.Remove(s.path(seq)); err != nil {
		return fmt.Errorf("spool remove segment: %w", err)
	}
	s.segs = s.segs[1:]
	s.rOff = 0
	return nil
}

// discard deletes every segment and returns how many records were pending.
func (s *spool) discard() int64 {
	n := s.pending
	for len(s.segs) > 0 {
		if err := s.dropOldest(); err != nil {
			s.segs = s.segs[1:] // cannot remove it; forget it rather than loop
		}
	}
	s.pending, s.total = 0, 0
	return n
}

func (s *spool) close() error {
	if s.r != nil {
		s.r.Close()
	}
	if s.w != nil {
		return s.w.Close()
	}
	return nil
}
