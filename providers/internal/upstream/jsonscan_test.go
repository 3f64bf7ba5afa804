package upstream_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/routelab/routelab/providers/internal/upstream"
)

// tree walks one value with the Scanner into what encoding/json decodes
// into an any, numbers as the marker "<number>" (the Scanner skips them).
func tree(s *upstream.Scanner, kind byte) (any, error) {
	switch kind {
	case '{':
		m := map[string]any{}
		err := s.Object(func(key []byte) error {
			v, err := value(s)
			m[string(key)] = v
			return err
		})
		return m, err
	case '[':
		a := []any{}
		err := s.Array(func() error {
			v, err := value(s)
			a = append(a, v)
			return err
		})
		return a, err
	}
	v, _, err := s.String()
	return string(v), err
}

// value reads any value: containers and strings through tree, the rest
// through Skip.
func value(s *upstream.Scanner) (any, error) {
	if s.Null() {
		return nil, nil
	}
	for _, k := range []byte{'{', '[', '"'} {
		probe := *s
		if _, err := tree(&probe, k); err == nil {
			return tree(s, k)
		}
	}
	return "<other>", s.Skip()
}

// normalize maps encoding/json's numbers and booleans to the markers value uses.
func normalize(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			v[k] = normalize(e)
		}
	case []any:
		for i, e := range v {
			v[i] = normalize(e)
		}
	case float64, bool:
		return "<other>"
	}
	return v
}

var scanDocs = []string{
	`{"created":1713833628,"data":[{"b64_json":"iVBORw0KGgo="}]}`,
	` { "data" : [ { "url" : null , "b64_json" : "QUJD" , "revised_prompt" : "a \"fox\"\n" } ] , "usage" : {"total_tokens":100,"input_tokens_details":{"text_tokens":[1,2.5e3,-0.1]}} } `,
	`{"data":[{"b64_json":"aVZCT1J3MEtHZ289\/"}],"x":[true,false,null,{},[]]}`,
	`{"a":"\u00e9\ud83d\ude00","b":"","c":{"d":{"e":[[["deep"]]]}}}`,
	`{"data":null}`,
	`[]`,
	`"just a string"`,
}

func TestScannerMatchesEncodingJSON(t *testing.T) {
	for _, doc := range scanDocs {
		var want any
		if err := json.Unmarshal([]byte(doc), &want); err != nil {
			t.Fatalf("test doc %s: %v", doc, err)
		}
		s := upstream.NewScanner([]byte(doc))
		got, err := value(s)
		if err == nil {
			err = s.End()
		}
		if err != nil || !reflect.DeepEqual(got, normalize(want)) {
			t.Errorf("Scanner on %s = %#v, %v; want %#v", doc, got, err, normalize(want))
		}
	}
}

func TestScannerRawStrings(t *testing.T) {
	s := upstream.NewScanner([]byte(`["plain", "esc\/aped"]`))
	var got []string
	var raws []bool
	err := s.Array(func() error {
		v, raw, err := s.String()
		got, raws = append(got, string(v)), append(raws, raw)
		return err
	})
	if err != nil || !reflect.DeepEqual(got, []string{"plain", "esc/aped"}) || !reflect.DeepEqual(raws, []bool{true, false}) {
		t.Errorf("strings %q raw %v err %v; want the plain one raw, the escaped one unescaped", got, raws, err)
	}
}

func TestScannerRejects(t *testing.T) {
	for _, doc := range []string{
		``,
		`not json`,
		`{"data":[{"b64_json":"abc}]}`,
		`{"data" [1]}`,
		`{"a":1 "b":2}`,
		`{"a":1}}`,
		`{"a":1} x`,
		`[1,]`,
		`{"a":tru}`,
		`{"a":"\x"}`,
		`{"a":"unterminated\"}`,
		strings.Repeat("[", 100000) + strings.Repeat("]", 100000),
	} {
		s := upstream.NewScanner([]byte(doc))
		_, err := value(s)
		if err == nil {
			err = s.End()
		}
		if err == nil {
			t.Errorf("Scanner accepted %.60q", doc)
		}
	}
}

// FuzzScanner: on what encoding/json accepts, the Scanner reads the same
// strings and structure; on anything, it does not panic. (Invalid UTF-8 is
// left as it is, where encoding/json substitutes U+FFFD: base64, URLs and
// keys are ASCII.)
func FuzzScanner(f *testing.F) {
	for _, d := range scanDocs {
		f.Add(d)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		s := upstream.NewScanner([]byte(doc))
		got, err := value(s)
		if err == nil {
			err = s.End()
		}
		var want any
		if !utf8.ValidString(doc) || json.Unmarshal([]byte(doc), &want) != nil {
			return
		}
		if err != nil || !reflect.DeepEqual(got, normalize(want)) {
			t.Errorf("Scanner on %q = %#v, %v; want %#v", doc, got, err, normalize(want))
		}
	})
}
