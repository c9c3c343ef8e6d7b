// Package settings holds the one rule every server's Config follows: a
// field left at zero takes its default, and a negative one is an error,
// which the Config's Validate reports. A Config is then read the same way
// in the backend, the frontend and the gateway, and a field added to one
// follows the rule without a line of its own.
package settings

import (
	"errors"
	"fmt"
	"reflect"
)

// Fill sets every zero field of *cfg to the same field of defaults, field
// by field into nested structs (such as backend.Limits).
func Fill[T any](cfg *T, defaults T) {
	fill(reflect.ValueOf(cfg).Elem(), reflect.ValueOf(defaults))
}

func fill(dst, def reflect.Value) {
	for i := range dst.NumField() {
		f := dst.Field(i)
		switch {
		case !f.CanSet():
		case f.Kind() == reflect.Struct:
			fill(f, def.Field(i))
		case f.IsZero():
			f.Set(def.Field(i))
		}
	}
}

// NotNegative reports each number of cfg, a struct, that is below zero,
// by its field name: what of names the Config in the message.
func NotNegative(of string, cfg any) error {
	var errs []error
	walk(reflect.ValueOf(cfg), "", func(name string, v reflect.Value) {
		negative := false
		switch v.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			negative = v.Int() < 0
		case reflect.Float32, reflect.Float64:
			negative = v.Float() < 0
		}
		if negative {
			errs = append(errs, fmt.Errorf("%s: %s is %v; it must not be negative (zero means the default)", of, name, v.Interface()))
		}
	})
	return errors.Join(errs...)
}

func walk(v reflect.Value, prefix string, visit func(name string, v reflect.Value)) {
	t := v.Type()
	for i := range v.NumField() {
		field := t.Field(i)
		if !field.IsExported() {
			continue
		}
		if f := v.Field(i); f.Kind() == reflect.Struct {
			walk(f, prefix+field.Name+".", visit)
		} else {
			visit(prefix+field.Name, f)
		}
	}
}
