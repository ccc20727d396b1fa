package main

import (
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/protobuf/encoding/protowire"
)

// runPluginProgram is the plugin (policy pack) to run. Engines since 3.1xx leave
// RunPluginRequest.program empty and send RunPluginRequest.info (field 5, a
// ProgramInfo) instead, which this sdk-3.79 proto does not know: it is read from
// the message's unknown fields (ProgramInfo.program_directory, field 2).
func runPluginProgram(req *pulumirpc.RunPluginRequest) string {
	if req.Program != "" {
		return req.Program
	}
	if info := bytesField(req.ProtoReflect().GetUnknown(), 5); info != nil {
		if dir := bytesField(info, 2); len(dir) > 0 {
			return string(dir)
		}
	}
	return req.Program
}

// bytesField returns the last length-delimited field num of a wire-format message.
func bytesField(b []byte, num protowire.Number) []byte {
	var found []byte
	for len(b) > 0 {
		n, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return found
		}
		b = b[l:]
		if n == num && typ == protowire.BytesType {
			v, l := protowire.ConsumeBytes(b)
			if l < 0 {
				return found
			}
			found, b = v, b[l:]
			continue
		}
		l = protowire.ConsumeFieldValue(n, typ, b)
		if l < 0 {
			return found
		}
		b = b[l:]
	}
	return found
}
