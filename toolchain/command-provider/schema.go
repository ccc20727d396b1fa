package main

// A minimal Pulumi package schema for the implemented subset. SDKs are not
// generated from it (styx uses the published pulumi-command 1.2.1 SDK); it
// exists so that `pulumi package get-schema` and tooling get a valid answer.

type jsonObject = map[string]any

var (
	schemaString     = jsonObject{"type": "string"}
	schemaStringList = jsonObject{"type": "array", "items": schemaString}
	schemaStringMap  = jsonObject{"type": "object", "additionalProperties": schemaString}
)

func commonInputs(module string) jsonObject {
	return jsonObject{
		keyCreate:      schemaString,
		keyUpdate:      schemaString,
		keyDelete:      schemaString,
		keyStdin:       schemaString,
		keyEnvironment: schemaStringMap,
		keyTriggers:    jsonObject{"type": "array", "items": jsonObject{"$ref": "pulumi.json#/Any"}},
		keyAddPrevious: jsonObject{"type": "boolean", "default": true},
		keyLogging:     jsonObject{"$ref": "#/types/command:" + module + ":Logging"},
	}
}

func commandResource(inputs jsonObject, required []string) jsonObject {
	props := jsonObject{keyStdout: schemaString, keyStderr: schemaString}
	for k, v := range inputs {
		props[k] = v
	}
	return jsonObject{
		"inputProperties": inputs,
		"requiredInputs":  required,
		"properties":      props,
		"required":        append([]string{keyStdout, keyStderr}, required...),
	}
}

func loggingEnum() jsonObject {
	var values []jsonObject
	for _, v := range []string{logStdout, logStderr, logStdoutAndStderr, logNone} {
		values = append(values, jsonObject{"value": v})
	}
	return jsonObject{"type": "string", "enum": values}
}

func connectionType(withProxy bool) jsonObject {
	integer := func(def int) jsonObject { return jsonObject{"type": "integer", "default": def} }
	secret := jsonObject{"type": "string", "secret": true}
	props := jsonObject{
		"host":               schemaString,
		"port":               jsonObject{"type": "number", "default": defaultPort},
		"user":               jsonObject{"type": "string", "default": defaultUser},
		"password":           secret,
		"privateKey":         secret,
		"privateKeyPassword": secret,
		"agentSocketPath":    schemaString,
		"hostKey":            schemaString,
		"dialErrorLimit":     integer(defaultDialErrorLimit),
		"perDialTimeout":     integer(defaultPerDialTimeout),
	}
	if withProxy {
		props["proxy"] = jsonObject{"$ref": "#/types/command:remote:ProxyConnection"}
	}
	return jsonObject{"type": "object", "properties": props, "required": []string{"host"}}
}

func packageSchema() jsonObject {
	local := commonInputs("local")
	local[keyDir] = schemaString
	local[keyInterpreter] = schemaStringList
	remote := commonInputs("remote")
	remote[keyConnection] = jsonObject{"$ref": "#/types/command:remote:Connection", "secret": true}

	return jsonObject{
		"name":    packageName,
		"version": version,
		"types": jsonObject{
			"command:local:Logging":          loggingEnum(),
			"command:remote:Logging":         loggingEnum(),
			"command:remote:Connection":      connectionType(true),
			"command:remote:ProxyConnection": connectionType(false),
		},
		"resources": jsonObject{
			localCommandType:  commandResource(local, []string{}),
			remoteCommandType: commandResource(remote, []string{keyConnection}),
		},
	}
}
