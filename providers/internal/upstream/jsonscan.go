package upstream

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// Scanner walks a JSON document in place, for vendor responses that are
// mostly one long string (an image in base64): the adapter visits the
// members it wants and gets their strings as slices of the body, so the
// image is scanned once (for its closing quote) and decoded straight from
// the body. encoding/json scanned it three times (validation, decoding,
// unquoting) and copied it into a string before base64 saw it.
//
// The grammar is JSON's; skipped numbers are checked only for their
// characters. Keys are matched byte for byte (encoding/json also matches
// them case-insensitively; vendors send them as documented).
type Scanner struct {
	b     []byte
	i     int
	depth int
}

// maxDepth bounds nesting, so a hostile body cannot recurse without end.
const maxDepth = 512

// NewScanner scans b, which must not change while the scanner is used.
func NewScanner(b []byte) *Scanner { return &Scanner{b: b} }

func (s *Scanner) errorf(format string, args ...any) error {
	return fmt.Errorf("json at offset %d: %s", s.i, fmt.Sprintf(format, args...))
}

func (s *Scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek skips whitespace and returns the next byte, 0 at the end.
func (s *Scanner) peek() byte {
	s.ws()
	if s.i >= len(s.b) {
		return 0
	}
	return s.b[s.i]
}

// Null consumes a null and reports whether the next value was one.
func (s *Scanner) Null() bool {
	if s.peek() == 'n' && bytes.HasPrefix(s.b[s.i:], []byte("null")) {
		s.i += 4
		return true
	}
	return false
}

// Object visits the members of an object: member gets each key (a slice of
// the body, unescaped only when it had escapes) and must consume its value
// with one of String, Object, Array or Skip. null is an empty object.
func (s *Scanner) Object(member func(key []byte) error) error {
	if s.Null() {
		return nil
	}
	if s.peek() != '{' {
		return s.errorf("want an object")
	}
	if s.depth++; s.depth > maxDepth {
		return s.errorf("nested deeper than %d", maxDepth)
	}
	defer func() { s.depth-- }()
	s.i++
	if s.peek() == '}' {
		s.i++
		return nil
	}
	for {
		if s.peek() != '"' {
			return s.errorf("want a key")
		}
		key, _, err := s.str()
		if err != nil {
			return err
		}
		if s.peek() != ':' {
			return s.errorf("want ':'")
		}
		s.i++
		if err := member(key); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return nil
		default:
			return s.errorf("want ',' or '}'")
		}
	}
}

// Array visits the elements of an array: elem must consume each with one
// of String, Object, Array or Skip. null is an empty array.
func (s *Scanner) Array(elem func() error) error {
	if s.Null() {
		return nil
	}
	if s.peek() != '[' {
		return s.errorf("want an array")
	}
	if s.depth++; s.depth > maxDepth {
		return s.errorf("nested deeper than %d", maxDepth)
	}
	defer func() { s.depth-- }()
	s.i++
	if s.peek() == ']' {
		s.i++
		return nil
	}
	for {
		if err := elem(); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			return nil
		default:
			return s.errorf("want ',' or ']'")
		}
	}
}

// String reads a string value. raw is true when the string had no escapes:
// v is then the slice of the body between the quotes; otherwise v is the
// unescaped text in a new buffer. null reads as an empty string.
func (s *Scanner) String() (v []byte, raw bool, err error) {
	if s.Null() {
		return nil, true, nil
	}
	if s.peek() != '"' {
		return nil, false, s.errorf("want a string")
	}
	return s.str()
}

// str reads the string at s.i (an opening quote).
func (s *Scanner) str() ([]byte, bool, error) {
	start := s.i + 1
	rest := s.b[start:]
	q := bytes.IndexByte(rest, '"')
	if q < 0 {
		return nil, false, s.errorf("unterminated string")
	}
	if bytes.IndexByte(rest[:q], '\\') < 0 {
		s.i = start + q + 1
		return rest[:q], true, nil
	}
	// Escapes: find the closing quote past them, then let encoding/json
	// unescape (\uXXXX with surrogate pairs, \/ ...).
	j := start
	for j < len(s.b) && s.b[j] != '"' {
		if s.b[j] == '\\' {
			j++
		}
		j++
	}
	if j >= len(s.b) {
		return nil, false, s.errorf("unterminated string")
	}
	var out string
	if err := json.Unmarshal(s.b[s.i:j+1], &out); err != nil {
		return nil, false, s.errorf("bad string: %v", err)
	}
	s.i = j + 1
	return []byte(out), false, nil
}

// Skip consumes one value of any kind.
func (s *Scanner) Skip() error {
	switch c := s.peek(); {
	case c == '{':
		return s.Object(func([]byte) error { return s.Skip() })
	case c == '[':
		return s.Array(s.Skip)
	case c == '"':
		_, _, err := s.str()
		return err
	case c == 't' && bytes.HasPrefix(s.b[s.i:], []byte("true")):
		s.i += 4
	case c == 'f' && bytes.HasPrefix(s.b[s.i:], []byte("false")):
		s.i += 5
	case c == 'n' && bytes.HasPrefix(s.b[s.i:], []byte("null")):
		s.i += 4
	case c == '-' || (c >= '0' && c <= '9'):
		j := s.i
		for j < len(s.b) && isNumberByte(s.b[j]) {
			j++
		}
		s.i = j
	default:
		return s.errorf("want a value")
	}
	return nil
}

// Raw consumes one value and returns its JSON text (a slice of the body),
// for a small member the adapter decodes with encoding/json.
func (s *Scanner) Raw() ([]byte, error) {
	s.ws()
	start := s.i
	if err := s.Skip(); err != nil {
		return nil, err
	}
	return s.b[start:s.i], nil
}

func isNumberByte(c byte) bool {
	return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E'
}

// errTrailing is returned by End when more than whitespace follows.
var errTrailing = errors.New("data after the JSON value")

// End checks that only whitespace is left.
func (s *Scanner) End() error {
	if s.peek() != 0 || s.i < len(s.b) {
		return fmt.Errorf("json at offset %d: %w", s.i, errTrailing)
	}
	return nil
}
