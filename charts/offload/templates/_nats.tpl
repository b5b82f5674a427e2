{{/* The bundled NATS server's configuration (nats.conf). */}}
{{- define "offload.nats.conf" -}}
{{- $name := include "offload.nats.name" . -}}
# NATS with JetStream for Offload ({{ .Values.nats.replicas }} node{{ if gt (int .Values.nats.replicas) 1 }}s{{ end }}).
server_name: $SERVER_NAME
listen: 0.0.0.0:4222
http: 0.0.0.0:8222
max_payload: 8MB
lame_duck_duration: 30s
lame_duck_grace_period: 10s
pid_file: /var/run/nats/nats.pid

jetstream {
  store_dir: /data
  max_memory_store: {{ .Values.nats.jetstream.maxMemoryStore }}
  max_file_store: {{ .Values.nats.jetstream.maxFileStore }}
}
{{- if gt (int .Values.nats.replicas) 1 }}

cluster {
  name: {{ $name }}
  listen: 0.0.0.0:6222
  routes: [
    {{- range $i := until (int .Values.nats.replicas) }}
    nats://{{ $name }}-{{ $i }}.{{ $name }}-headless.{{ $.Release.Namespace }}.svc.{{ $.Values.clusterDomain }}:6222
    {{- end }}
  ]
  connect_retries: 120
}
{{- end }}
{{- end -}}
