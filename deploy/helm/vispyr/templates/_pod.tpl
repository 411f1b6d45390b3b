{{/* The pod template both modes share. */}}
{{- define "vispyr.pod" -}}
metadata:
  labels:
    {{- include "vispyr.selector" . | nindent 4 }}
  annotations:
    checksum/config: {{ include "vispyr.config" . | sha256sum }}
    {{- with .Values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  {{- with .Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    runAsNonRoot: true
    runAsUser: 65532
    runAsGroup: 65532
    fsGroup: 65532
  containers:
    - name: vispyr
      image: "{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}"
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      args: [{{ .Values.mode | quote }}, "--config", "/etc/vispyr/vispyr.yaml"]
      {{- if and .Values.s3.enabled .Values.s3.existingSecret }}
      env:
        - name: VISPYR_TRACES_STORAGE_S3_ACCESS_KEY
          valueFrom:
            secretKeyRef: {name: {{ .Values.s3.existingSecret }}, key: {{ .Values.s3.accessKeyKey }}}
        - name: VISPYR_TRACES_STORAGE_S3_SECRET_KEY
          valueFrom:
            secretKeyRef: {name: {{ .Values.s3.existingSecret }}, key: {{ .Values.s3.secretKeyKey }}}
      {{- end }}
      ports:
        {{- range $name, $port := include "vispyr.ports" . | fromYaml }}
        - {name: {{ $name }}, containerPort: {{ $port }}, protocol: TCP}
        {{- end }}
      readinessProbe:
        httpGet: {path: /health/status, port: health}
        periodSeconds: 5
      livenessProbe:
        httpGet: {path: /health/status, port: health}
        initialDelaySeconds: 60
        periodSeconds: 10
        failureThreshold: 6
      resources:
        {{- toYaml .Values.resources | nindent 8 }}
      securityContext:
        allowPrivilegeEscalation: false
        readOnlyRootFilesystem: true
        capabilities: {drop: [ALL]}
      volumeMounts:
        - {name: config, mountPath: /etc/vispyr, readOnly: true}
        - {name: data, mountPath: /var/lib/vispyr}
        - {name: tmp, mountPath: /tmp}
  volumes:
    - name: config
      secret: {secretName: {{ include "vispyr.fullname" . }}}
    # The root filesystem is read-only; /tmp stays writable.
    - name: tmp
      emptyDir: {}
    {{- if eq .Values.mode "gateway" }}
    # The gateway's queues: they outlive container restarts, not the pod.
    - name: data
      emptyDir: {}
    {{- end }}
  {{- with .Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}
