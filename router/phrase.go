package router

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Unquoted target text: "a sign that says Open late", "a t-shirt with
// Carpe Diem written on it". Without quotes the words to render have no
// marked end, so the rules are conservative: the text runs to punctuation,
// to a lower-case function word or to eight words, and the triggers that
// also mean something else ("a girl reading a book", "a dog called Rex")
// need the text to start with a capital or a digit.

// maxPhraseWords bounds the words of a prompt searched for phrasings.
const maxPhraseWords = 64

// maxPhraseText bounds the words of one unquoted target.
const maxPhraseText = 8

type word struct {
	start, end int32
	brk        bool // punctuation between this word and the one before
}

// trigger says how the text after a trigger word must look.
type trigger uint8

const (
	trigNone trigger = iota
	trigAny          // says, titled, labeled: any words
	trigCap          // reading, called, spelling: capitalised words
)

// role is what a word can do in a phrasing; one lookup per word finds all.
type role uint8

const (
	afterAny role = 1 << iota // the text follows: "says", "titled", "labeled"
	afterCap                  // the text follows if capitalised: "reading", "called"
	nounAny                   // after "the" or "with": "with the words Open late"
	nounCap                   // the same, capitalised: "the letters P A X"
	before                    // the text precedes: "with Carpe Diem written on it"
)

// roles maps lower-case words to their roles. Text before a "before" word
// must follow "with", "has" or "having" and start capitalised.
var roles = map[string]role{
	"says": afterAny, "titled": afterAny, "entitled": afterAny, "labeled": afterAny, "labelled": afterAny,
	"captioned": afterAny, "saying": afterCap | nounAny, "reads": afterCap, "reading": afterCap,
	"spelling": afterCap, "spells": afterCap, "writing": afterCap, "called": afterCap,
	"word": nounAny, "words": nounAny, "text": nounAny, "phrase": nounAny, "slogan": nounAny,
	"caption": nounAny, "headline": nounAny, "letters": nounCap,
	"written": before, "printed": before, "painted": before, "spelled": before, "engraved": before,
	"embroidered": before, "carved": before, "stenciled": before,
}

// Trigger words are 4 to 11 letters long: shorter or longer words skip the
// lookup.
const minRole, maxRole = 4, 11

// stopWords end unquoted target text when written in lower case (a capital
// "In" belongs to the text: "a sign that says OPEN IN BACK").
var stopWords = map[string]bool{
	"in": true, "on": true, "at": true, "with": true, "and": true, "or": true, "of": true, "for": true,
	"by": true, "from": true, "to": true, "into": true, "onto": true, "over": true, "under": true,
	"above": true, "below": true, "across": true, "near": true, "next": true, "beside": true,
	"behind": true, "written": true, "painted": true, "printed": true, "is": true, "are": true,
	"was": true, "were": true, "that": true, "which": true, "who": true, "while": true, "as": true,
	"a": true, "an": true, "the": true, "it": true, "its": true, "this": true, "their": true,
	"his": true, "her": true, "some": true, "being": true, "has": true, "have": true,
}

// connectors may sit inside capitalised text: "Lord of the Rings".
var connectors = map[string]bool{"of": true, "the": true, "and": true, "to": true, "a": true, "in": true, "on": true, "for": true}

func isBreak(r rune) bool {
	switch r {
	case ',', '.', ';', ':', '(', ')', '[', ']', '{', '}', '\n', '"', '“', '”', '„', '‘', '«', '»', '‹', '›':
		return true
	}
	return false
}

// findPhrased adds the unquoted target texts of p's first words.
func findPhrased(p string, f *Features) {
	var ws [maxPhraseWords]word
	n := splitWords(p, &ws)
	for k := 0; k < n && f.NTargets < MaxTargets; k++ {
		w := p[ws[k].start:ws[k].end]
		if len(w) < minRole || len(w) > maxRole {
			continue
		}
		r := lookupFold(roles, w)
		if r == 0 {
			continue
		}
		t := trigNone
		switch {
		case r&afterAny != 0:
			t = trigAny
		case r&afterCap != 0:
			t = trigCap
		}
		if r&(nounAny|nounCap) != 0 && k > 0 && !ws[k].brk {
			if prev := p[ws[k-1].start:ws[k-1].end]; strings.EqualFold(prev, "the") || strings.EqualFold(prev, "with") {
				t = trigAny
				if r&nounCap != 0 {
					t = trigCap
				}
			}
		}
		if t != trigNone {
			if e := textAfter(p, ws[:n], k+1, t); e > k+1 {
				f.addTarget(p, int(ws[k+1].start), int(ws[e-1].end))
				k = e - 1
			}
			continue
		}
		if r&before == 0 || ws[k].brk {
			continue
		}
		if s := textBefore(p, ws[:n], k); s >= 0 {
			f.addTarget(p, int(ws[s].start), int(ws[k-1].end))
		}
	}
}

func lookupFold[V comparable](m map[string]V, w string) V {
	var zero V
	if len(w) > 12 {
		return zero
	}
	var b [12]byte
	for i := 0; i < len(w); i++ {
		c := w[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		b[i] = c
	}
	return m[string(b[:len(w)])] // no allocation: the compiler reuses b for the lookup
}

// splitWords splits p into words separated by spaces and punctuation.
func splitWords(p string, ws *[maxPhraseWords]word) int {
	n, start, brk := 0, -1, false
	for i := 0; i <= len(p) && n < maxPhraseWords; {
		r, size := ' ', 1
		if i < len(p) {
			if c := p[i]; c < utf8.RuneSelf {
				r = rune(c)
			} else {
				r, size = utf8.DecodeRuneInString(p[i:])
			}
		}
		sep := isBreak(r)
		if sep || r == ' ' || r == '\t' || r == '\r' || r >= utf8.RuneSelf && unicode.IsSpace(r) || i == len(p) {
			if start >= 0 {
				ws[n] = word{int32(start), int32(i), brk}
				n++
				start, brk = -1, false
			}
			brk = brk || sep
		} else if start < 0 {
			start = i
		}
		i += size
	}
	return n
}

// capitalNext reports whether the first word from i on that is not a
// connector is capitalised and in the same clause.
func capitalNext(p string, ws []word, i int) bool {
	for ; i < len(ws) && !ws[i].brk; i++ {
		if w := p[ws[i].start:ws[i].end]; !connectors[w] {
			return capital(w)
		}
	}
	return false
}

func capital(w string) bool {
	r, _ := runeAt(w, 0)
	return unicode.IsUpper(r) || unicode.IsDigit(r) || r == '$' || r == '#'
}

// textAfter returns the end (exclusive word index) of the target text that
// starts at word s, or s when there is none.
func textAfter(p string, ws []word, s int, t trigger) int {
	e := s
	for e < len(ws) && e-s < maxPhraseText && !ws[e].brk {
		w := p[ws[e].start:ws[e].end]
		lowerStop := stopWords[w]
		switch {
		case e > s && connectors[w] && capitalNext(p, ws, e+1):
			// a connector inside capitalised text
		case lowerStop:
			return e
		case t == trigCap && !capital(w):
			return e
		}
		e++
	}
	return e
}

// textBefore returns the first word of the text before word k ("with
// Carpe Diem written"), or -1.
func textBefore(p string, ws []word, k int) int {
	for s := k - 1; s >= 0 && k-s <= maxPhraseText; s-- {
		w := p[ws[s].start:ws[s].end]
		if lookupFold(anchors, w) {
			if s == k-1 || !capital(p[ws[s+1].start:ws[s+1].end]) {
				return -1
			}
			return s + 1
		}
		if ws[s].brk {
			return -1
		}
	}
	return -1
}

var anchors = map[string]bool{"with": true, "has": true, "having": true, "showing": true}
