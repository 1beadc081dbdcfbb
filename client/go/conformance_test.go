package nearcache

// The shared conformance cases (tests/conformance/cases.json), byte for
// byte as every client sends them.

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/nearcache/nearcache/client/go/internal/pb"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

type wireCase struct {
	Name    string         `json:"name"`
	Request string         `json:"request"`
	ID      uint64         `json:"id"`
	Code    string         `json:"code"`
	Message string         `json:"message"`
	Fields  map[string]any `json:"fields"`
}

// field returns the value at a dotted path of the reply (a number indexes a
// repeated field).
func field(m protoreflect.Message, path string) (any, bool) {
	parts := strings.Split(path, ".")
	var v protoreflect.Value
	var fd protoreflect.FieldDescriptor
	for i := 0; i < len(parts); i++ {
		fd = m.Descriptor().Fields().ByName(protoreflect.Name(parts[i]))
		if fd == nil {
			return nil, false
		}
		v = m.Get(fd)
		if fd.IsList() && i+1 < len(parts) {
			n, err := strconv.Atoi(parts[i+1])
			if err != nil || n >= v.List().Len() {
				return nil, false
			}
			i++
			v = v.List().Get(n)
		}
		if fd.Kind() == protoreflect.MessageKind && i+1 < len(parts) {
			m = v.Message()
		}
	}
	switch fd.Kind() {
	case protoreflect.BytesKind:
		return string(v.Bytes()), true
	case protoreflect.BoolKind:
		return v.Bool(), true
	case protoreflect.EnumKind:
		return float64(v.Enum()), true
	case protoreflect.StringKind:
		return v.String(), true
	case protoreflect.Int32Kind, protoreflect.Int64Kind:
		return float64(v.Int()), true
	}
	return float64(v.Uint()), true
}

func TestEveryConformanceCaseGetsTheExpectedReply(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../../tests/conformance/cases.json")
	if err != nil {
		t.Fatal(err)
	}
	var file struct{ Cases []wireCase }
	if err := json.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	if len(file.Cases) == 0 {
		t.Fatal("no cases")
	}
	d := startDaemon(t, startRedis(t))
	c := dial(t, d, WithNearBytes(0))
	names := map[string]float64{}
	for _, tc := range file.Cases {
		req, err := hex.DecodeString(strings.ReplaceAll(tc.Request, " ", ""))
		if err != nil {
			t.Fatalf("%s: %v", tc.Name, err)
		}
		raw, err := c.Request(bg, req)
		if err != nil {
			t.Fatalf("%s: %v", tc.Name, err)
		}
		rep := &pb.Reply{}
		if err := proto.Unmarshal(raw, rep); err != nil {
			t.Fatalf("%s: %v", tc.Name, err)
		}
		if rep.Id != tc.ID || rep.Code.String() != tc.Code || !strings.Contains(rep.Message, tc.Message) ||
			(tc.Message == "" && rep.Message != "") {
			t.Errorf("%s: reply id %d %s %q", tc.Name, rep.Id, rep.Code, rep.Message)
		}
		for path, want := range tc.Fields {
			got, ok := field(rep.ProtoReflect(), path)
			if !ok {
				t.Errorf("%s: no field %s", tc.Name, path)
				continue
			}
			if s, isName := want.(string); isName && strings.HasPrefix(s, "$") {
				name, plus, hasPlus := strings.Cut(s[1:], "+")
				n, _ := got.(float64)
				if !hasPlus {
					names[name] = n
					continue
				}
				k, _ := strconv.Atoi(plus)
				want = names[name] + float64(k)
			}
			if got != want {
				t.Errorf("%s: %s = %v, want %v", tc.Name, path, got, want)
			}
		}
	}
}
