{{/* Names and labels shared by every object. */}}
{{- define "learnstream.fullname" -}}
{{- printf "%s-learnstream" .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}

{{- define "learnstream.labels" -}}
app.kubernetes.io/name: learnstream
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Selector labels of one part: (dict "root" $ "service" "progress" "part" "web") */}}
{{- define "learnstream.selector" -}}
app.kubernetes.io/name: learnstream
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ printf "%s-%s" .service .part }}
{{- end -}}

{{- define "learnstream.secretName" -}}
{{- .Values.secrets.existingSecret | default (printf "%s-secrets" (include "learnstream.fullname" .)) -}}
{{- end -}}

{{/* Every container's settings: the ConfigMap, then the secrets. DATABASE_URL is put
together here because Kubernetes expands $(DATABASE_PASSWORD) from the variable defined
before it (the password must therefore be URL-safe, or percent-encoded). */}}
{{- define "learnstream.env" -}}
envFrom:
  - configMapRef:
      name: {{ include "learnstream.fullname" . }}-settings
env:
  - name: LEARNSTREAM_CREDENTIALS
    valueFrom:
      secretKeyRef:
        name: {{ include "learnstream.secretName" . }}
        key: LEARNSTREAM_CREDENTIALS
  - name: FORWARDING_SECRET_KEYS
    valueFrom:
      secretKeyRef:
        name: {{ include "learnstream.secretName" . }}
        key: FORWARDING_SECRET_KEYS
  - name: DASHBOARD_SESSION_SECRET
    valueFrom:
      secretKeyRef:
        name: {{ include "learnstream.secretName" . }}
        key: DASHBOARD_SESSION_SECRET
  - name: DATABASE_PASSWORD
    valueFrom:
      secretKeyRef:
        name: {{ include "learnstream.secretName" . }}
        key: DATABASE_PASSWORD
  - name: DATABASE_URL
    value: {{ printf "postgresql+psycopg://%s:$(DATABASE_PASSWORD)@%s:%v/%s" .Values.database.user .Values.database.host .Values.database.port .Values.database.name | quote }}
{{- end -}}

{{- define "learnstream.image" -}}
{{ printf "%s:%s" .Values.image.repository .Values.image.tag | quote }}
{{- end -}}

{{/* The pod spec's common part: security, scratch space (the root filesystem is
read-only; gunicorn's Prometheus files and temporary files go to /tmp). */}}
{{- define "learnstream.podCommon" -}}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
volumes:
  - name: tmp
    emptyDir: {}
{{- end -}}
