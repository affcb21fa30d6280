package config

import (
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"time"

	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"
)

const (
	// DefaultForgetAfter is the forget_after of a source that leaves it
	// out.
	DefaultForgetAfter = 5 * time.Minute
	// maxForgetAfter bounds forget_after: longer keeps series of removed
	// objects for no one.
	maxForgetAfter = 7 * 24 * time.Hour
)

// Duration is a duration written as Prometheus writes them: "5m", "1h30m",
// "0s".
type Duration time.Duration

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(node *yaml.Node) error {
	node = resolve(node)
	if node.Kind != yaml.ScalarNode {
		return notA("a duration", "forget_after", node)
	}
	v, err := model.ParseDuration(node.Value)
	if err != nil {
		return fmt.Errorf("line %d: forget_after: %q is not a duration such as 30s, 5m or 1h", node.Line, node.Value)
	}
	if time.Duration(v) > maxForgetAfter {
		return fmt.Errorf("line %d: forget_after %s is longer than %s", node.Line, node.Value, model.Duration(maxForgetAfter))
	}
	*d = Duration(v)
	return nil
}

// Objects chooses the objects whose events a source counts under their
// own object label: the objects that Include matches (all if it is empty)
// and Exclude does not (none if it is empty). Events of the other objects
// are counted under an empty object label. Both are RE2 regular
// expressions that must match the whole object name.
type Objects struct {
	Include string `yaml:"include,omitempty"`
	Exclude string `yaml:"exclude,omitempty"`
}

// objectsKeys are the keys objects may have.
var objectsKeys = yamlKeys(reflect.TypeOf(Objects{}))

// UnmarshalYAML implements yaml.Unmarshaler, checking the keys and the
// expressions.
func (o *Objects) UnmarshalYAML(node *yaml.Node) error {
	node = resolve(node)
	if isNull(node) {
		*o = Objects{}
		return nil
	}
	if node.Kind != yaml.MappingNode {
		return notA("a mapping", "objects", node)
	}
	pairs, err := mergedPairs(node, func(k *yaml.Node) (string, error) {
		if !slices.Contains(objectsKeys, k.Value) {
			return "", fmt.Errorf("line %d: unknown key %q in objects (known keys: include, exclude)", k.Line, k.Value)
		}
		return k.Value, nil
	}, duplicateKey)
	if err != nil {
		return err
	}
	var out Objects
	for i := 0; i+1 < len(pairs); i += 2 {
		k, v := resolve(pairs[i]), resolve(pairs[i+1])
		if isNull(v) {
			continue
		}
		if v.Kind != yaml.ScalarNode {
			return notA("a regular expression", "objects: "+k.Value, v)
		}
		if _, err := WholeMatch(v.Value); err != nil {
			return fmt.Errorf("line %d: objects: %s: %w", v.Line, k.Value, err)
		}
		if k.Value == "include" {
			out.Include = v.Value
		} else {
			out.Exclude = v.Value
		}
	}
	*o = out
	return nil
}

// Regexps returns o's expressions compiled to match whole names, nil for
// those that are empty. o must have been checked by Parse.
func (o Objects) Regexps() (include, exclude *regexp.Regexp) {
	if o.Include != "" {
		include = regexp.MustCompile(anchor(o.Include))
	}
	if o.Exclude != "" {
		exclude = regexp.MustCompile(anchor(o.Exclude))
	}
	return include, exclude
}

// WholeMatch compiles RE2 expression expr to match whole strings only, as
// Prometheus's relabelling regexes do.
func WholeMatch(expr string) (*regexp.Regexp, error) {
	re, err := regexp.Compile(anchor(expr))
	if err != nil {
		// The error names the expression as given, not as anchored.
		if _, e := regexp.Compile(expr); e != nil {
			return nil, e
		}
		return nil, err
	}
	return re, nil
}

func anchor(expr string) string {
	return "^(?:" + expr + ")$"
}
