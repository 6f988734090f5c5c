package protocol

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// scanMaxDepth bounds the nesting the fast scanner follows; deeper frames
// (legal JSON up to encoding/json's 10,000 levels) take the reference path.
const scanMaxDepth = 64

// decodeFast reads the envelope of a well-formed frame in one pass without
// allocating: the top-level "type" (a string without escapes) and "id". It
// validates the whole frame as JSON on the way, because a frame it accepts
// must be one that encoding/json accepts too. For anything else, including
// every error, ok is false and Decode asks encoding/json, so the answers to
// bad input stay exactly those of the reference decoder (FuzzDecodeFast
// compares the two).
func decodeFast(frame []byte) (env Envelope, ok bool) {
	s := scanner{b: frame}
	s.ws()
	if !s.eat('{') {
		return env, false
	}
	var typ []byte
	s.ws()
	if !s.eat('}') {
		for {
			s.ws()
			ks, ke, plain := s.str()
			if ke < 0 || !plain {
				return env, false
			}
			s.ws()
			if !s.eat(':') {
				return env, false
			}
			s.ws()
			vs := s.i
			if !s.value(1) {
				return env, false
			}
			v := frame[vs:s.i]
			// encoding/json matches keys case-insensitively and keeps the
			// last of duplicates; so does this.
			switch key := frame[ks:ke]; {
			case foldEq(key, "type"):
				if string(v) == "null" {
					typ = nil
					break
				}
				if v[0] != '"' || !plainString(v) {
					return env, false
				}
				typ = v[1 : len(v)-1]
			case foldEq(key, "id"):
				env.ID = v
				if string(v) == "null" {
					env.ID = nil
				}
			}
			s.ws()
			if s.eat('}') {
				break
			}
			if !s.eat(',') {
				return env, false
			}
		}
	}
	s.ws()
	if s.i != len(frame) || len(typ) == 0 || !utf8.Valid(typ) {
		return env, false
	}
	if env.ID != nil {
		switch env.ID[0] {
		case '"', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		default:
			return env, false
		}
	}
	env.Type = internType(typ)
	env.Raw = frame
	return env, true
}

// internType returns the message types clients send most without
// allocating a string for them.
func internType(b []byte) string {
	switch string(b) {
	case TypePing:
		return TypePing
	case TypeInput:
		return TypeInput
	case TypePublish:
		return TypePublish
	case TypeMessage:
		return TypeMessage
	}
	return string(b)
}

// foldEq reports whether key equals the lower-case ASCII word w ignoring
// ASCII case (the only folds that can reach "type" or "id").
func foldEq(key []byte, w string) bool {
	if len(key) != len(w) {
		return false
	}
	for i := range key {
		if key[i]|0x20 != w[i] {
			return false
		}
	}
	return true
}

// plainString reports whether the string token v has no escapes.
func plainString(v []byte) bool {
	for _, c := range v[1 : len(v)-1] {
		if c == '\\' {
			return false
		}
	}
	return true
}

// scanner is a strict JSON syntax checker over b (RFC 8259 grammar; bytes
// inside strings are not checked for UTF-8, as encoding/json does not).
type scanner struct {
	b []byte
	i int
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) eat(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// str scans a string token; start and end delimit its contents (end < 0 if
// it is not a valid string) and plain says it has no escapes.
func (s *scanner) str() (start, end int, plain bool) {
	if !s.eat('"') {
		return 0, -1, false
	}
	start, plain = s.i, true
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return start, s.i - 1, plain
		case c < 0x20:
			return 0, -1, false
		case c == '\\':
			plain = false
			if s.i+1 >= len(s.b) {
				return 0, -1, false
			}
			switch s.b[s.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i += 2
			case 'u':
				if s.i+6 > len(s.b) {
					return 0, -1, false
				}
				for _, h := range s.b[s.i+2 : s.i+6] {
					if !isHex(h) {
						return 0, -1, false
					}
				}
				s.i += 6
			default:
				return 0, -1, false
			}
		default:
			s.i++
		}
	}
	return 0, -1, false
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// value scans one JSON value at nesting depth d.
func (s *scanner) value(d int) bool {
	if s.i >= len(s.b) || d > scanMaxDepth {
		return false
	}
	switch c := s.b[s.i]; {
	case c == '"':
		_, end, _ := s.str()
		return end >= 0
	case c == '{':
		s.i++
		s.ws()
		if s.eat('}') {
			return true
		}
		for {
			s.ws()
			if _, end, _ := s.str(); end < 0 {
				return false
			}
			s.ws()
			if !s.eat(':') {
				return false
			}
			s.ws()
			if !s.value(d + 1) {
				return false
			}
			s.ws()
			if s.eat('}') {
				return true
			}
			if !s.eat(',') {
				return false
			}
		}
	case c == '[':
		s.i++
		s.ws()
		if s.eat(']') {
			return true
		}
		for {
			s.ws()
			if !s.value(d + 1) {
				return false
			}
			s.ws()
			if s.eat(']') {
				return true
			}
			if !s.eat(',') {
				return false
			}
		}
	case c == 't':
		return s.lit("true")
	case c == 'f':
		return s.lit("false")
	case c == 'n':
		return s.lit("null")
	case c == '-' || '0' <= c && c <= '9':
		return s.number()
	}
	return false
}

func (s *scanner) lit(w string) bool {
	if len(s.b)-s.i >= len(w) && string(s.b[s.i:s.i+len(w)]) == w {
		s.i += len(w)
		return true
	}
	return false
}

// number scans -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) number() bool {
	s.eat('-')
	switch {
	case s.eat('0'):
	case s.i < len(s.b) && '1' <= s.b[s.i] && s.b[s.i] <= '9':
		s.digits()
	default:
		return false
	}
	if s.eat('.') && !s.digits() {
		return false
	}
	if s.eat('e') || s.eat('E') {
		if !s.eat('+') {
			s.eat('-')
		}
		if !s.digits() {
			return false
		}
	}
	return true
}

// digits scans one or more digits.
func (s *scanner) digits() bool {
	start := s.i
	for s.i < len(s.b) && '0' <= s.b[s.i] && s.b[s.i] <= '9' {
		s.i++
	}
	return s.i > start
}

// Member returns the raw value of the top-level member name (a lower-case
// ASCII word) of e.Raw, matched as encoding/json matches a struct field:
// ignoring ASCII case, the last of duplicates winning. ok is false when the
// frame has a key with escapes in it, or is not an object: the caller then
// decodes with encoding/json.
func (e Envelope) Member(name string) (v json.RawMessage, ok bool) {
	s := scanner{b: e.Raw}
	s.ws()
	if !s.eat('{') {
		return nil, false
	}
	s.ws()
	if s.eat('}') {
		s.ws()
		return nil, s.i == len(e.Raw)
	}
	for {
		s.ws()
		ks, ke, plain := s.str()
		if ke < 0 || !plain {
			return nil, false
		}
		s.ws()
		if !s.eat(':') {
			return nil, false
		}
		s.ws()
		vs := s.i
		if !s.value(1) {
			return nil, false
		}
		if foldEq(e.Raw[ks:ke], name) {
			v = e.Raw[vs:s.i]
		}
		s.ws()
		if s.eat('}') {
			s.ws()
			return v, s.i == len(e.Raw)
		}
		if !s.eat(',') {
			return nil, false
		}
	}
}

// appendRaw appends a raw JSON value compacted, as json.Marshal writes a
// json.RawMessage (except that <, > and & are not escaped: Tether's JSON is
// never embedded in HTML). v must be valid JSON.
func appendRaw(b []byte, v json.RawMessage) []byte {
	if bytes.IndexAny(v, " \t\r\n") < 0 {
		return append(b, v...)
	}
	buf := bytes.NewBuffer(b)
	if err := json.Compact(buf, v); err != nil {
		return append(b, "null"...)
	}
	return buf.Bytes()
}

// StringMember returns the top-level string member name of e.Raw decoded,
// when Member finds it and unquote can decode it; ok false means "decode
// with encoding/json" (also for a member that is absent or not a string).
// Terminal input takes this path for every keystroke.
func (e Envelope) StringMember(name string) (s []byte, ok bool) {
	v, ok := e.Member(name)
	if !ok || len(v) < 2 || v[0] != '"' {
		return nil, false
	}
	return unquote(v[1 : len(v)-1])
}

// unquote decodes the contents of a valid JSON string token. It reports
// false where encoding/json would substitute U+FFFD (invalid UTF-8, lone
// surrogates), leaving those to it.
func unquote(v []byte) ([]byte, bool) {
	i := bytes.IndexByte(v, '\\')
	if i < 0 {
		return v, utf8.Valid(v)
	}
	out := make([]byte, 0, len(v))
	for {
		out = append(out, v[:i]...)
		v = v[i:]
		if len(v) < 2 {
			return nil, false
		}
		switch c := v[1]; c {
		case '"', '\\', '/':
			out = append(out, c)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := hex4(v[2:])
			if !ok {
				return nil, false
			}
			n := 6
			if 0xD800 <= r && r < 0xDC00 {
				// A high surrogate must be followed by a low one.
				if len(v) < 12 || v[6] != '\\' || v[7] != 'u' {
					return nil, false
				}
				lo, ok := hex4(v[8:])
				if !ok || lo < 0xDC00 || lo >= 0xE000 {
					return nil, false
				}
				r, n = 0x10000+(r-0xD800)<<10+(lo-0xDC00), 12
			} else if 0xDC00 <= r && r < 0xE000 {
				return nil, false
			}
			out = utf8.AppendRune(out, r)
			v = v[n:]
			goto next
		default:
			return nil, false
		}
		v = v[2:]
	next:
		if i = bytes.IndexByte(v, '\\'); i < 0 {
			out = append(out, v...)
			return out, utf8.Valid(out)
		}
	}
}

// hex4 decodes four hex digits at the start of b.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}
