package router

import (
	"unicode"
	"unicode/utf8"
)

// Target text: the exact strings a prompt asks an image to show. Models
// differ most at lettering, so the words to render are a routing feature,
// and QA reads them back from the image (evaluator/qa). Extraction is one
// pass over the prompt for quotes and, only when nothing was quoted, a
// second over its first words for phrasings such as "a sign that says Open
// late"; both work on byte offsets so Extract stays allocation-free.

// Span is a byte range of the prompt.
type Span struct{ Start, End int32 }

// MaxTargets bounds the target strings kept per request.
const MaxTargets = 8

// Character classes of target text (Features.TargetChars).
const (
	CharUpper    = 1 << iota // A-Z and other upper-case letters
	CharLower                // lower-case letters
	CharDigit                // digits
	CharSymbol               // punctuation and symbols
	CharNonLatin             // letters outside Latin script (CJK, Cyrillic, ...)
)

// Target is the i-th target string of the prompt f was extracted from.
func (f *Features) Target(prompt string, i int) string {
	s := f.Targets[i]
	return prompt[s.Start:s.End]
}

// TargetTexts returns the strings prompt asks to render (allocates; for
// the serving path's QA and the simulator, not for routing).
func TargetTexts(prompt string) []string {
	var f Features
	findTargets(prompt, &f)
	if f.NTargets == 0 {
		return nil
	}
	out := make([]string, f.NTargets)
	for i := range out {
		out[i] = f.Target(prompt, i)
	}
	return out
}

// maxQuoteSpan bounds the search for a closing quote: an opener without a
// closer within it is not a quote (and a prompt made of stray quote marks
// stays linear).
const maxQuoteSpan = 400

// findTargets fills f's target fields from prompt p.
func findTargets(p string, f *Features) {
	f.NTargets, f.TargetRunes, f.TargetChars, f.Quoted = 0, 0, 0, 0
	findQuoted(p, f)
	if f.NTargets == 0 {
		findPhrased(p, f)
	}
	for i := 0; i < f.NTargets; i++ {
		s := p[f.Targets[i].Start:f.Targets[i].End]
		inWord := false
		for _, r := range s {
			f.TargetRunes++
			switch {
			case unicode.IsSpace(r):
				inWord = false
				continue
			case r >= 'A' && r <= 'Z':
				f.TargetChars |= CharUpper
			case r >= 'a' && r <= 'z':
				f.TargetChars |= CharLower
			case r >= '0' && r <= '9':
				f.TargetChars |= CharDigit
			case r < utf8.RuneSelf:
				f.TargetChars |= CharSymbol
			case unicode.Is(unicode.Latin, r):
				if unicode.IsUpper(r) {
					f.TargetChars |= CharUpper
				} else {
					f.TargetChars |= CharLower
				}
			case unicode.IsLetter(r):
				f.TargetChars |= CharNonLatin
			case unicode.IsDigit(r):
				f.TargetChars |= CharDigit
			default:
				f.TargetChars |= CharSymbol
			}
			if !inWord {
				f.Quoted++
				inWord = true
			}
		}
	}
}

func (f *Features) addTarget(p string, start, end int) {
	for start < end && p[start] == ' ' {
		start++
	}
	for end > start && p[end-1] == ' ' {
		end--
	}
	if start == end || f.NTargets == MaxTargets {
		return
	}
	f.Targets[f.NTargets] = Span{int32(start), int32(end)}
	f.NTargets++
}

// Quote marks. A closer is accepted when it is one of the opener's closers.
const (
	qDouble = iota // "..." and fullwidth ＂...＂
	qSingle        // '...' with apostrophes inside
	qCurlyD        // “...” and „...“
	qCurlyS        // ‘...’
	qGuil          // «...» ‹...›
	qCJK           // 「...」 『...』 《...》
)

// opener reports whether r opens a quote and of which kind.
func opener(r rune) (kind int, ok bool) {
	switch r {
	case '"', '＂':
		return qDouble, true
	case '\'':
		return qSingle, true
	case '“', '„':
		return qCurlyD, true
	case '‘':
		return qCurlyS, true
	case '«', '‹':
		return qGuil, true
	case '「', '『', '《':
		return qCJK, true
	}
	return 0, false
}

func closes(open, r rune) bool {
	switch open {
	case '"':
		return r == '"' || r == '”' // phones mix straight and curly
	case '＂':
		return r == '＂'
	case '\'':
		return r == '\'' || r == '’'
	case '“', '„':
		return r == '”' || r == '“' || r == '"'
	case '‘':
		return r == '’' || r == '\''
	case '«':
		return r == '»'
	case '‹':
		return r == '›'
	case '「':
		return r == '」'
	case '『':
		return r == '』'
	case '《':
		return r == '》'
	}
	return false
}

// alnum reports whether r is a letter or digit: the test that tells a quote
// mark from an apostrophe (conductor's, don't) or an inch mark (12").
func alnum(r rune) bool {
	if r < utf8.RuneSelf {
		return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
	}
	return unicode.IsLetter(r) || unicode.IsDigit(r)
}

func runeBefore(p string, i int) rune {
	if i == 0 {
		return ' '
	}
	if c := p[i-1]; c < utf8.RuneSelf {
		return rune(c)
	}
	r, _ := utf8.DecodeLastRuneInString(p[:i])
	return r
}

func runeAt(p string, i int) (rune, int) {
	if i >= len(p) {
		return ' ', 0
	}
	if c := p[i]; c < utf8.RuneSelf {
		return rune(c), 1
	}
	return utf8.DecodeRuneInString(p[i:])
}

// findQuoted adds every quoted span. Straight and single quotes open only
// after a non-letter (so "12\" pizza" and "dog's" open nothing) and close
// only before one (so the apostrophe in 'Don't Panic!' does not close).
func findQuoted(p string, f *Features) {
	for i := 0; i < len(p); {
		if c := p[i]; c < utf8.RuneSelf && c != '"' && c != '\'' {
			i++ // the common case: an ASCII byte that is no quote mark
			continue
		}
		r, n := runeAt(p, i)
		kind, ok := opener(r)
		if !ok || (kind == qDouble || kind == qSingle || kind == qCurlyS) && alnum(runeBefore(p, i)) {
			i += n
			continue
		}
		if next, _ := runeAt(p, i+n); next == ' ' && (kind == qSingle || kind == qCurlyS) {
			i += n // "rock ' n" or a stray mark: single quotes hug their words
			continue
		}
		end := closer(p, i+n, r, kind)
		if end < 0 {
			i += n
			continue
		}
		f.addTarget(p, i+n, end)
		_, cn := runeAt(p, end)
		i = end + cn
	}
}

// closer returns the offset of the quote mark that closes open, searching
// from i, or -1.
func closer(p string, i int, open rune, kind int) int {
	limit := min(len(p), i+maxQuoteSpan)
	for j := i; j < limit; {
		r, n := runeAt(p, j)
		if closes(open, r) {
			if kind != qSingle && kind != qCurlyS {
				return j
			}
			after, _ := runeAt(p, j+n)
			if !alnum(after) && runeBefore(p, j) != ' ' {
				return j
			}
		}
		j += n
	}
	return -1
}
