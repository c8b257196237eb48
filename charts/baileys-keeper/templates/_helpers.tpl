{{/*
baileys-keeper.name: the chart name (or nameOverride), DNS-safe.
*/}}
{{- define "baileys-keeper.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
baileys-keeper.fullname: the release-scoped name of every object.
*/}}
{{- define "baileys-keeper.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
baileys-keeper.selectorLabels: the labels that select this release's pod (never change them after install).
*/}}
{{- define "baileys-keeper.selectorLabels" -}}
app.kubernetes.io/name: {{ include "baileys-keeper.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
baileys-keeper.labels: the standard labels of every object, then commonLabels (Bitnami's convention).
The chart's own keys win over commonLabels: the selector labels must never change after install.
*/}}
{{- define "baileys-keeper.labels" -}}
{{- toYaml (merge (include "baileys-keeper.ownLabels" . | fromYaml) (deepCopy (default (dict) .Values.commonLabels))) }}
{{- end }}

{{/*
baileys-keeper.ownLabels: the chart's standard labels alone (app.kubernetes.io/*, helm.sh/chart).
*/}}
{{- define "baileys-keeper.ownLabels" -}}
{{- $own := dict
      "helm.sh/chart" (printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-")
      "app.kubernetes.io/name" (include "baileys-keeper.name" .)
      "app.kubernetes.io/instance" .Release.Name
      "app.kubernetes.io/version" (toString .Chart.AppVersion)
      "app.kubernetes.io/managed-by" .Release.Service
      "app.kubernetes.io/part-of" "baileys-keeper" }}
{{- toYaml $own }}
{{- end }}

{{/*
baileys-keeper.podLabels: the pod template's labels: the selector labels, then workload.podLabels, then
commonLabels (the selector labels win; workload.podLabels wins over commonLabels).
*/}}
{{- define "baileys-keeper.podLabels" -}}
{{- $selector := include "baileys-keeper.selectorLabels" . | fromYaml }}
{{- toYaml (merge $selector (deepCopy (default (dict) .Values.workload.podLabels)) (deepCopy (default (dict) .Values.commonLabels))) }}
{{- end }}

{{/*
baileys-keeper.annotations: an object's `annotations:` key (nothing when there are none): its own
annotations (`extra`, which win) and commonAnnotations, indented for an object's metadata. Call with
(dict "root" $ "extra" MAP) right after the metadata's labels, without nindent.
*/}}
{{- define "baileys-keeper.annotations" -}}
{{- $all := merge (deepCopy (default (dict) .extra)) (deepCopy (default (dict) .root.Values.commonAnnotations)) }}
{{- with $all }}
  annotations:
    {{- toYaml . | nindent 4 }}
{{- end }}
{{- end }}

{{/*
baileys-keeper.sessionId: the session id, session.id as given. Never derived from a name: a release
renamed, or a nameOverride/fullnameOverride set, must not switch the pod to another (empty) session.
validate requires it unless keeper.sessionsDir.enabled.
*/}}
{{- define "baileys-keeper.sessionId" -}}
{{- .Values.session.id }}
{{- end }}

{{/*
baileys-keeper.imageTag: an image tag value as text. Tags are often all digits (a build number, a date),
and then arrive as numbers: `--set image.tag=42` gives an integer, and `tag: 20240101` in a values file a
float, which toString alone would write as 2.0240101e+07. A whole float is written as its digits.
*/}}
{{- define "baileys-keeper.imageTag" -}}
{{- if and (kindIs "float64" .) (eq . (float64 (int64 .))) }}{{ int64 . }}{{ else }}{{ toString . }}{{ end }}
{{- end }}

{{/*
baileys-keeper.image: "registry/repository:tag" of a keeper image, or "registry/repository@digest" when
its digest is set (Bitnami's image.digest: a digest pins the content, so the tag is left out). Call with
(dict "root" $ "repository" R "digest" D).
*/}}
{{- define "baileys-keeper.image" -}}
{{- $image := .root.Values.image }}
{{- $name := ternary (printf "%s/%s" $image.registry .repository) .repository (not (empty $image.registry)) }}
{{- if .digest }}
{{- printf "%s@%s" $name .digest }}
{{- else }}
{{- printf "%s:%s" $name (include "baileys-keeper.imageTag" (default .root.Chart.AppVersion $image.tag)) }}
{{- end }}
{{- end }}

{{/*
baileys-keeper.initImage / sidecarImage: the two keeper images (the sidecar image also runs helm test).
*/}}
{{- define "baileys-keeper.initImage" -}}
{{- include "baileys-keeper.image" (dict "root" . "repository" .Values.image.initRepository "digest" .Values.image.initDigest) }}
{{- end }}
{{- define "baileys-keeper.sidecarImage" -}}
{{- include "baileys-keeper.image" (dict "root" . "repository" .Values.image.sidecarRepository "digest" .Values.image.sidecarDigest) }}
{{- end }}

{{/*
baileys-keeper.botImage: "repository@digest" of the bot when bot.image.digest is set, else "repository:tag".
*/}}
{{- define "baileys-keeper.botImage" -}}
{{- $image := .Values.bot.image }}
{{- if $image.digest }}
{{- printf "%s@%s" $image.repository $image.digest }}
{{- else }}
{{- printf "%s:%s" $image.repository (include "baileys-keeper.imageTag" $image.tag) }}
{{- end }}
{{- end }}

{{/*
baileys-keeper.secretName: the Secret holding the credentials (existing or created).
*/}}
{{- define "baileys-keeper.secretName" -}}
{{- default (include "baileys-keeper.fullname" .) .Values.secret.existingSecret }}
{{- end }}

{{/*
baileys-keeper.apiTokenKey / encryptionKeyKey: the Secret key to mount, or "" when the feature is off.
*/}}
{{- define "baileys-keeper.apiTokenKey" -}}
{{- if .Values.secret.existingSecret }}{{ .Values.secret.apiTokenKey }}{{ else if .Values.secret.create.apiToken }}api-token{{ end }}
{{- end }}
{{- define "baileys-keeper.encryptionKeyKey" -}}
{{- if .Values.secret.existingSecret }}{{ .Values.secret.encryptionKeyKey }}{{ else if .Values.secret.create.encryptionKey }}encryption-key{{ end }}
{{- end }}

{{/*
baileys-keeper.webhookSecretKey: the Secret key of the webhook signing secret (mounted as a file into the
sidecar), or "" when webhooks go unsigned.
baileys-keeper.webhookUrlKey / heartbeatUrlKey: the Secret key of a URL given through the Secret (passed
as a secretKeyRef env: the keeper reads URLs from the environment only), or "" when it is not.
*/}}
{{- define "baileys-keeper.webhookSecretKey" -}}
{{- if .Values.secret.existingSecret }}{{ .Values.secret.webhookSecretKey }}{{ else if .Values.secret.create.webhookSecret }}webhook-secret{{ end }}
{{- end }}
{{- define "baileys-keeper.webhookUrlKey" -}}
{{- if .Values.secret.existingSecret }}{{ .Values.secret.webhookUrlKey }}{{ else if .Values.secret.create.webhookUrl }}webhook-url{{ end }}
{{- end }}
{{- define "baileys-keeper.heartbeatUrlKey" -}}
{{- if .Values.secret.existingSecret }}{{ .Values.secret.heartbeatUrlKey }}{{ else if .Values.secret.create.heartbeatUrl }}heartbeat-url{{ end }}
{{- end }}

{{/*
baileys-keeper.urlEnv: one URL setting of the sidecar, from its plain value or from the Secret (never
both: validate refuses that). Call with (dict "root" $ "name" ENV "value" V "key" SECRET-KEY).
*/}}
{{- define "baileys-keeper.urlEnv" -}}
{{- if .value }}
- name: {{ .name }}
  value: {{ .value | quote }}
{{- else if .key }}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ include "baileys-keeper.secretName" .root }}
      key: {{ .key }}
{{- end }}
{{- end }}

{{/*
baileys-keeper.databaseUrlKey: the Secret key holding DATABASE_URL.
*/}}
{{- define "baileys-keeper.databaseUrlKey" -}}
{{- if .Values.secret.existingSecret }}{{ .Values.secret.databaseUrlKey }}{{ else }}DATABASE_URL{{ end }}
{{- end }}

{{/*
baileys-keeper.serviceAccountName: the pod's ServiceAccount.
*/}}
{{- define "baileys-keeper.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "baileys-keeper.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
baileys-keeper.terminationGracePeriodSeconds: long enough for the bot to stop, then the sidecar's quiet
period and its whole bounded final backup, plus 5 s margin. Both modes run them one after the other:
native mode by Kubernetes' ordering, classic mode by the sidecar's preStop hook (bot.stopSeconds).
*/}}
{{- define "baileys-keeper.terminationGracePeriodSeconds" -}}
{{- if kindIs "invalid" .Values.workload.terminationGracePeriodSeconds }}
{{- $sidecarMs := add .Values.sidecar.shutdownQuietMs .Values.sidecar.shutdownTimeoutMs }}
{{- add .Values.bot.stopSeconds (div (add $sidecarMs 999) 1000) 5 }}
{{- else }}
{{- .Values.workload.terminationGracePeriodSeconds }}
{{- end }}
{{- end }}

{{/*
baileys-keeper.leaseWaitSeconds: how long restore waits for another holder of the lease. Unless set, long
enough for the old pod to finish its whole termination (the grace period) and, if it was SIGKILLed
before releasing, for its lease to expire (leaseTtlMs), plus 10 s margin (at most 24 days, the longest wait the keeper takes). A Deployment's ReplicaSet
starts the replacement of an evicted or deleted pod at once, while the old pod is still stopping; a
shorter wait would give up and restore the old pod's state before its last writes were stored.
*/}}
{{- define "baileys-keeper.leaseWaitSeconds" -}}
{{- if kindIs "invalid" .Values.restore.leaseWaitSeconds }}
{{- /* At most 24 days, the longest duration the keeper takes (a Node.js timer's limit). */}}
{{- min (add (include "baileys-keeper.terminationGracePeriodSeconds" . | int) (div (add .Values.sidecar.leaseTtlMs 999) 1000) 10) 2073600 }}
{{- else }}
{{- .Values.restore.leaseWaitSeconds }}
{{- end }}
{{- end }}

{{/*
baileys-keeper.validate: fails the render with a clear message on values the schema cannot express.
*/}}
{{- define "baileys-keeper.validate" -}}
{{- if .Values.keeperOnly.enabled }}
{{- if not (tpl .Values.keeperOnly.workloadName .) }}
{{- fail "keeperOnly.workloadName is required with keeperOnly.enabled: the name of your Deployment or StatefulSet (its pod names scope the alerts and the dashboard)" }}
{{- end }}
{{- if not .Values.keeperOnly.podSelector }}
{{- fail "keeperOnly.podSelector is required with keeperOnly.enabled: labels of your bot's pods (its selector's matchLabels), which the Service and the PodMonitor select" }}
{{- end }}
{{- else if not .Values.bot.image.repository }}
{{- fail "bot.image.repository is required: set it to your bot's image (e.g. --set bot.image.repository=registry.example.com/my-bot)" }}
{{- end }}
{{- if and (not .Values.secret.existingSecret) (not .Values.secret.create.databaseUrl) }}
{{- fail "a PostgreSQL URL is required: set secret.existingSecret to a Secret with a DATABASE_URL key, or secret.create.databaseUrl" }}
{{- end }}
{{- /* No default tag, and never latest: a moving tag would roll a different bot on the next pod start. */}}
{{- if and (not .Values.keeperOnly.enabled) (kindIs "string" .Values.bot.image.tag) (empty .Values.bot.image.tag) (not .Values.bot.image.digest) }}
{{- fail "bot.image.tag is required (or bot.image.digest): the version of your bot's image, e.g. --set bot.image.tag=1.4.2; the chart has no default, and does not take latest for you" }}
{{- end }}
{{- if and (eq .Values.sidecar.mode "native") (semverCompare "<1.29.0-0" .Capabilities.KubeVersion.Version) }}
{{- fail (printf "sidecar.mode=native needs Kubernetes 1.29 or newer (native sidecar containers); this cluster is %s: set sidecar.mode=classic" .Capabilities.KubeVersion.Version) }}
{{- end }}
{{- if .Values.keeper.requireEncryption }}
{{- $keyGiven := include "baileys-keeper.encryptionKeyKey" . }}
{{- range .Values.keeper.extraEnv }}
{{- if has .name (list "KEEPER_ENCRYPTION_KEY" "KEEPER_ENCRYPTION_KEY_FILE" "KEEPER_ENCRYPTION_KEYS") }}{{ $keyGiven = "extraEnv" }}{{ end }}
{{- end }}
{{- if not $keyGiven }}
{{- fail "keeper.requireEncryption needs an encryption key: set secret.encryptionKeyKey (with secret.existingSecret), secret.create.encryptionKey, or KEEPER_ENCRYPTION_KEYS in keeper.extraEnv" }}
{{- end }}
{{- end }}
{{- if and (not .Values.keeper.sessionsDir.enabled) (not .Values.session.id) }}
{{- /* Required rather than defaulted: an install without it fails loudly, and so does an upgrade of a
       release installed before the id was required, instead of silently moving it to a new session.
       The message names the id the chart used to derive (the full name), which keeps that login. */}}
{{- fail (printf "session.id is required: the id of the WhatsApp session this release keeps in PostgreSQL (1-100 chars of [A-Za-z0-9._-]), e.g. --set session.id=my-bot; it never follows the release name or nameOverride/fullnameOverride. Upgrading a release installed by an earlier chart without session.id? Set session.id=%s, the id that chart derived from the release's full name, to keep its login (or keeper.sessionsDir.enabled for a sessions directory)" (include "baileys-keeper.fullname" .)) }}
{{- end }}
{{- if .Values.keeper.sessionsDir.enabled }}
{{- if .Values.session.id }}
{{- fail (printf "session.id (%q) names one session, but keeper.sessionsDir.enabled keeps every sub-directory as its own session (id: keeper.sessionsDir.prefix + the directory name): unset session.id, or turn keeper.sessionsDir off" .Values.session.id) }}
{{- end }}
{{- range $name := list "session" "keeper" }}
{{- if hasKey $.Values.monitoring.prometheusRule.alertLabels $name }}
{{- fail (printf "monitoring.prometheusRule.alertLabels.%s: with keeper.sessionsDir.enabled the chart's alerts take session from each session's series and set keeper to the release's full name" $name) }}
{{- end }}
{{- end }}
{{- else }}
{{- if .Values.keeper.sessionsDir.prefix }}
{{- fail (printf "keeper.sessionsDir.prefix (%q) only applies with keeper.sessionsDir.enabled: set keeper.sessionsDir.enabled=true, or unset the prefix" .Values.keeper.sessionsDir.prefix) }}
{{- end }}
{{- if hasKey .Values.monitoring.prometheusRule.alertLabels "session" }}
{{- $why := "the chart sets every alert's session label to the session id; set session.id instead" }}
{{- fail (printf "monitoring.prometheusRule.alertLabels.session: %s" $why) }}
{{- end }}
{{- end }}
{{- /* Which session(s) the keepers keep is the chart's to set: the CLI refuses KEEPER_SESSION_ID next to
       KEEPER_SESSIONS_DIR (exit 64), so a pod with both would never start. */}}
{{- $chartSets := list "KEEPER_SESSIONS_DIR" "KEEPER_SESSION_PREFIX" }}
{{- if .Values.keeper.sessionsDir.enabled }}{{ $chartSets = append $chartSets "KEEPER_SESSION_ID" }}{{ end }}
{{- range .Values.keeper.extraEnv }}
{{- if has .name $chartSets }}
{{- fail (printf "keeper.extraEnv: %s is the chart's to set; use keeper.sessionsDir (enabled, path, prefix) instead" .name) }}
{{- end }}
{{- end }}
{{- $ownVolumes := list "auth" "bot-tmp" "keeper-secret-files" }}
{{- range .Values.bot.extraVolumes }}
{{- if has .name $ownVolumes }}
{{- fail (printf "bot.extraVolumes: %q is the name of one of the chart's own volumes (%s); choose another" .name (join ", " $ownVolumes)) }}
{{- end }}
{{- end }}
{{- /* A URL given twice would leave which one the sidecar uses to the order of its env entries. */}}
{{- $urls := list
      (list "notifications.webhook.url" .Values.notifications.webhook.url (include "baileys-keeper.webhookUrlKey" .) "secret.webhookUrlKey" "secret.create.webhookUrl")
      (list "notifications.heartbeat.url" .Values.notifications.heartbeat.url (include "baileys-keeper.heartbeatUrlKey" .) "secret.heartbeatUrlKey" "secret.create.heartbeatUrl") }}
{{- range $urls }}
{{- if and (index . 1) (index . 2) }}
{{- $from := ternary (index . 3) (index . 4) (not (empty $.Values.secret.existingSecret)) }}
{{- fail (printf "%s and %s both set the same URL: keep one (the Secret for a URL that carries a token) and empty the other" (index . 0) $from) }}
{{- end }}
{{- end }}
{{- if and (include "baileys-keeper.webhookSecretKey" .) (not (or .Values.notifications.webhook.url (include "baileys-keeper.webhookUrlKey" .))) }}
{{- fail "a webhook signing secret is set (secret.webhookSecretKey or secret.create.webhookSecret) but no webhook URL: set notifications.webhook.url, secret.webhookUrlKey or secret.create.webhookUrl, or drop the secret" }}
{{- end }}
{{- $keeperSets := list "KEEPER_WEBHOOK_URL" "KEEPER_WEBHOOK_SECRET" "KEEPER_WEBHOOK_SECRET_FILE" "KEEPER_HEARTBEAT_URL" "KEEPER_HEARTBEAT_INTERVAL" }}
{{- range .Values.keeper.extraEnv }}
{{- if has .name $keeperSets }}
{{- fail (printf "keeper.extraEnv: %s is the chart's to set; use notifications.* (and the secret.* keys for secrets and URLs with tokens) instead" .name) }}
{{- end }}
{{- end }}
{{- if gt (int .Values.sidecar.debounceMs) (int .Values.sidecar.maxDelayMs) }}
{{- fail (printf "sidecar.maxDelayMs (%v) must be at least sidecar.debounceMs (%v)" .Values.sidecar.maxDelayMs .Values.sidecar.debounceMs) }}
{{- end }}
{{- end }}

{{/*
baileys-keeper.secretFilesDir: where the optional secret files (API token, encryption key) are mounted.
*/}}
{{- define "baileys-keeper.secretFilesDir" -}}/var/run/secrets/baileys-keeper{{- end }}

{{/*
baileys-keeper.commonEnv: the environment both keeper containers share (the names of README "Configuration").
*/}}
{{- define "baileys-keeper.commonEnv" -}}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "baileys-keeper.secretName" . }}
      key: {{ include "baileys-keeper.databaseUrlKey" . }}
{{- if .Values.keeper.sessionsDir.enabled }}
{{- /* Many sessions: no KEEPER_SESSION_ID (the CLI refuses it with a sessions directory) and no
       KEEPER_DIR (unused then; the images' own KEEPER_DIR is ignored too). */}}
- name: KEEPER_SESSIONS_DIR
  value: {{ .Values.keeper.sessionsDir.path | quote }}
{{- with .Values.keeper.sessionsDir.prefix }}
- name: KEEPER_SESSION_PREFIX
  value: {{ . | quote }}
{{- end }}
{{- else }}
- name: KEEPER_SESSION_ID
  value: {{ include "baileys-keeper.sessionId" . | quote }}
- name: KEEPER_DIR
  value: {{ .Values.keeper.dir | quote }}
{{- end }}
- name: KEEPER_SCHEMA
  value: {{ .Values.keeper.schema | quote }}
- name: KEEPER_LOG_LEVEL
  value: {{ .Values.keeper.logLevel | quote }}
{{- if include "baileys-keeper.encryptionKeyKey" . }}
- name: KEEPER_ENCRYPTION_KEY_FILE
  value: {{ printf "%s/encryption-key" (include "baileys-keeper.secretFilesDir" .) | quote }}
{{- end }}
{{- if .Values.keeper.requireEncryption }}
- name: KEEPER_REQUIRE_ENCRYPTION
  value: "true"
{{- end }}
{{- with .Values.keeper.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
baileys-keeper.secretFilesVolume: the Secret's API token, encryption key and webhook signing secret as
files for the keeper containers (nothing when none is set). Shared by the workload and the helm test pod;
call with (dict "root" $ "for" "workload"|"test"): the test pod's doctor needs no webhook secret.
*/}}
{{- define "baileys-keeper.secretFilesVolume" -}}
{{- $root := .root }}
{{- $apiKey := include "baileys-keeper.apiTokenKey" $root }}
{{- $encKey := include "baileys-keeper.encryptionKeyKey" $root }}
{{- $webhookKey := ternary (include "baileys-keeper.webhookSecretKey" $root) "" (eq .for "workload") }}
{{- if or $apiKey $encKey $webhookKey -}}
- name: {{ include "baileys-keeper.volumeName" (dict "root" $root "name" "keeper-secret-files") }}
  secret:
    secretName: {{ include "baileys-keeper.secretName" $root }}
    # Owner root, group fsGroup: the keeper's user reads the files through the group, so the group
    # needs read (0400 would leave them readable only where fsGroup handling adds it).
    defaultMode: 0440
    items:
      {{- if $apiKey }}
      - key: {{ $apiKey }}
        path: api-token
      {{- end }}
      {{- if $encKey }}
      - key: {{ $encKey }}
        path: encryption-key
      {{- end }}
      {{- if $webhookKey }}
      - key: {{ $webhookKey }}
        path: webhook-secret
      {{- end }}
{{- end }}
{{- end }}

{{/*
baileys-keeper.volumeName: the pod volume name of one of the chart's volumes ("auth",
"keeper-secret-files"). With keeperOnly.enabled the pod is the user's, whose own volumes may well be
called "auth": there they are "baileys-keeper-auth" and "baileys-keeper-secret-files". Call with
(dict "root" $ "name" NAME).
*/}}
{{- define "baileys-keeper.volumeName" -}}
{{- if .root.Values.keeperOnly.enabled }}baileys-keeper-{{ trimPrefix "keeper-" .name }}{{ else }}{{ .name }}{{ end }}
{{- end }}

{{/*
baileys-keeper.keeperDir: where the keeper containers mount the auth volume (the sessions directory with
keeper.sessionsDir.enabled).
*/}}
{{- define "baileys-keeper.keeperDir" -}}
{{- if .Values.keeper.sessionsDir.enabled }}{{ .Values.keeper.sessionsDir.path }}{{ else }}{{ .Values.keeper.dir }}{{ end }}
{{- end }}

{{/*
baileys-keeper.keeperMounts: the auth volume (and the secret files when any) in a keeper container. Call
with (dict "root" $ "sidecar" BOOL): only the sidecar reads the webhook secret, so restore and the
test pod's doctor mount the files only for the API token or the encryption key.
*/}}
{{- define "baileys-keeper.keeperMounts" -}}
{{- $root := .root -}}
- name: {{ include "baileys-keeper.volumeName" (dict "root" $root "name" "auth") }}
  mountPath: {{ include "baileys-keeper.keeperDir" $root | quote }}
{{- if or (include "baileys-keeper.apiTokenKey" $root) (include "baileys-keeper.encryptionKeyKey" $root) (and .sidecar (include "baileys-keeper.webhookSecretKey" $root)) }}
- name: {{ include "baileys-keeper.volumeName" (dict "root" $root "name" "keeper-secret-files") }}
  mountPath: {{ include "baileys-keeper.secretFilesDir" $root | quote }}
  readOnly: true
{{- end }}
{{- end }}

{{/*
baileys-keeper.restoreContainer: the init container that restores the session before anything starts.
*/}}
{{- define "baileys-keeper.restoreContainer" -}}
- name: restore
  image: {{ include "baileys-keeper.initImage" . | quote }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  args:
    - restore
    {{- if .Values.restore.requireBackup }}
    - --require-backup
    {{- end }}
  env:
    {{- include "baileys-keeper.commonEnv" . | nindent 4 }}
    - name: KEEPER_WAIT_SECONDS
      value: {{ .Values.restore.waitSeconds | quote }}
    - name: KEEPER_LEASE_WAIT_SECONDS
      value: {{ include "baileys-keeper.leaseWaitSeconds" . | quote }}
  volumeMounts:
    {{- include "baileys-keeper.keeperMounts" (dict "root" . "sidecar" false) | nindent 4 }}
  resources:
    {{- toYaml .Values.restore.resources | nindent 4 }}
  securityContext:
    {{- toYaml .Values.keeper.securityContext | nindent 4 }}
{{- end }}

{{/*
baileys-keeper.portName: the name of the sidecar's HTTP port: "http", or with keeperOnly.enabled
"keeper-http" (a port name is unique within a pod, and the user's bot may well have an "http").
*/}}
{{- define "baileys-keeper.portName" -}}
{{- ternary "keeper-http" "http" .Values.keeperOnly.enabled }}
{{- end }}

{{/*
baileys-keeper.sidecarContainer: the watcher/backup/HTTP container. In native mode it is an init
container with restartPolicy Always, which Kubernetes stops only after the bot has exited.
*/}}
{{- define "baileys-keeper.sidecarContainer" -}}
- name: sidecar
  image: {{ include "baileys-keeper.sidecarImage" . | quote }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  {{- if eq .Values.sidecar.mode "native" }}
  restartPolicy: Always
  {{- else }}
  # Classic mode: Kubernetes would send SIGTERM to the bot and the sidecar at once, and the sidecar
  # waits for quiet only up to half its shutdown budget: a bot still writing on its way out would lose
  # its last writes. The hook holds the sidecar's SIGTERM back for the bot's stop time (bot.stopSeconds),
  # so its final backup comes after the bot is gone. The hook's time counts against the grace period,
  # which already includes bot.stopSeconds.
  lifecycle:
    preStop:
      exec:
        command: ["node", "-e", "setTimeout(() => {}, {{ mul .Values.bot.stopSeconds 1000 }})"]
  {{- end }}
  args:
    - sidecar
  env:
    {{- include "baileys-keeper.commonEnv" . | nindent 4 }}
    - name: KEEPER_LISTEN
      value: {{ printf "0.0.0.0:%v" .Values.sidecar.port | quote }}
    - name: KEEPER_DEBOUNCE_MS
      value: {{ .Values.sidecar.debounceMs | quote }}
    - name: KEEPER_MAX_DELAY_MS
      value: {{ .Values.sidecar.maxDelayMs | quote }}
    - name: KEEPER_INTERVAL_MS
      value: {{ .Values.sidecar.intervalMs | quote }}
    - name: KEEPER_WATCH
      value: {{ .Values.sidecar.watch | quote }}
    - name: KEEPER_POLL_INTERVAL_MS
      value: {{ .Values.sidecar.pollIntervalMs | quote }}
    - name: KEEPER_LEASE_TTL_MS
      value: {{ .Values.sidecar.leaseTtlMs | quote }}
    - name: KEEPER_KEEP_GENERATIONS
      value: {{ .Values.sidecar.keepGenerations | quote }}
    - name: KEEPER_RETENTION
      value: {{ .Values.sidecar.retention | quote }}
    - name: KEEPER_SHUTDOWN_QUIET_MS
      value: {{ .Values.sidecar.shutdownQuietMs | quote }}
    - name: KEEPER_SHUTDOWN_TIMEOUT_MS
      value: {{ .Values.sidecar.shutdownTimeoutMs | quote }}
    {{- if include "baileys-keeper.apiTokenKey" . }}
    - name: KEEPER_API_TOKEN_FILE
      value: {{ printf "%s/api-token" (include "baileys-keeper.secretFilesDir" .) | quote }}
    {{- end }}
    {{- /* Notifications (SPEC "Session lifecycle"): the loop's, so the sidecar's only. */}}
    {{- with include "baileys-keeper.urlEnv" (dict "root" . "name" "KEEPER_WEBHOOK_URL" "value" .Values.notifications.webhook.url "key" (include "baileys-keeper.webhookUrlKey" .)) }}
    {{- . | trim | nindent 4 }}
    {{- end }}
    {{- if include "baileys-keeper.webhookSecretKey" . }}
    - name: KEEPER_WEBHOOK_SECRET_FILE
      value: {{ printf "%s/webhook-secret" (include "baileys-keeper.secretFilesDir" .) | quote }}
    {{- end }}
    {{- $heartbeatKey := include "baileys-keeper.heartbeatUrlKey" . }}
    {{- with include "baileys-keeper.urlEnv" (dict "root" . "name" "KEEPER_HEARTBEAT_URL" "value" .Values.notifications.heartbeat.url "key" $heartbeatKey) }}
    {{- . | trim | nindent 4 }}
    {{- end }}
    {{- if or .Values.notifications.heartbeat.url $heartbeatKey }}
    - name: KEEPER_HEARTBEAT_INTERVAL
      value: {{ .Values.notifications.heartbeat.interval | quote }}
    {{- end }}
  ports:
    - name: {{ include "baileys-keeper.portName" . }}
      containerPort: {{ .Values.sidecar.port }}
      protocol: TCP
  startupProbe:
    httpGet:
      path: /readyz
      port: {{ include "baileys-keeper.portName" . }}
    {{- toYaml .Values.sidecar.startupProbe | nindent 4 }}
  readinessProbe:
    httpGet:
      path: /readyz
      port: {{ include "baileys-keeper.portName" . }}
    {{- toYaml .Values.sidecar.readinessProbe | nindent 4 }}
  livenessProbe:
    httpGet:
      path: /healthz
      port: {{ include "baileys-keeper.portName" . }}
    {{- toYaml .Values.sidecar.livenessProbe | nindent 4 }}
  volumeMounts:
    {{- include "baileys-keeper.keeperMounts" (dict "root" . "sidecar" true) | nindent 4 }}
  resources:
    {{- toYaml .Values.sidecar.resources | nindent 4 }}
  securityContext:
    {{- toYaml .Values.keeper.securityContext | nindent 4 }}
{{- end }}

{{/*
baileys-keeper.botAuthMount: the bot's mount of the auth volume, at bot.authDir (bot.sessionsDir with
keeper.sessionsDir.enabled).
*/}}
{{- define "baileys-keeper.botAuthMount" -}}
- name: {{ include "baileys-keeper.volumeName" (dict "root" . "name" "auth") }}
  mountPath: {{ ternary .Values.bot.sessionsDir .Values.bot.authDir .Values.keeper.sessionsDir.enabled | quote }}
{{- end }}

{{/*
baileys-keeper.keeperInitContainers / keeperContainers / keeperVolumes: the keeper's part of a pod: the
init containers (restore, then the sidecar in native mode), the regular containers (the sidecar in
classic mode; nothing in native mode) and the volumes (the shared auth emptyDir, the Secret's files).
The chart's own pod and, with keeperOnly.enabled, the user's pod (through the public templates in
_keeper.tpl) are built from these.
*/}}
{{- define "baileys-keeper.keeperInitContainers" -}}
{{- include "baileys-keeper.restoreContainer" . }}
{{- if eq .Values.sidecar.mode "native" }}
{{ include "baileys-keeper.sidecarContainer" . }}
{{- end }}
{{- end }}
{{- define "baileys-keeper.keeperContainers" -}}
{{- if eq .Values.sidecar.mode "classic" }}
{{- include "baileys-keeper.sidecarContainer" . }}
{{- end }}
{{- end }}
{{- define "baileys-keeper.keeperVolumes" -}}
{{- include "baileys-keeper.authVolume" . }}
{{- with include "baileys-keeper.secretFilesVolume" (dict "root" . "for" "workload") }}
{{ . }}
{{- end }}
{{- end }}
{{- define "baileys-keeper.authVolume" -}}
{{- $emptyDir := dict }}
{{- with .Values.authVolume.medium }}{{ $_ := set $emptyDir "medium" . }}{{ end }}
{{- with .Values.authVolume.sizeLimit }}{{ $_ := set $emptyDir "sizeLimit" . }}{{ end -}}
- name: {{ include "baileys-keeper.volumeName" (dict "root" . "name" "auth") }}
  emptyDir: {{- if $emptyDir }}{{ toYaml $emptyDir | nindent 4 }}{{ else }} {}{{ end }}
{{- end }}

{{/*
baileys-keeper.secretChecksum: a hash of the Secret the chart creates ("" with secret.existingSecret),
as a pod annotation's value, so that the pod rolls when the Secret changes.
*/}}
{{- define "baileys-keeper.secretChecksum" -}}
{{- if not .Values.secret.existingSecret }}
{{- include (print .Template.BasePath "/secret.yaml") . | sha256sum }}
{{- end }}
{{- end }}

{{/*
baileys-keeper.botContainer: the user's bot, with the auth volume at its own path.
*/}}
{{- define "baileys-keeper.botContainer" -}}
{{- $bot := .Values.bot -}}
- name: bot
  image: {{ include "baileys-keeper.botImage" . | quote }}
  imagePullPolicy: {{ $bot.image.pullPolicy }}
  {{- with $bot.command }}
  command:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $bot.args }}
  args:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $bot.env }}
  env:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $bot.envFrom }}
  envFrom:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $bot.ports }}
  ports:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  volumeMounts:
    {{- include "baileys-keeper.botAuthMount" . | nindent 4 }}
    {{- if $bot.tmpVolume }}
    - name: bot-tmp
      mountPath: /tmp
    {{- end }}
    {{- with $bot.extraVolumeMounts }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with $bot.livenessProbe }}
  livenessProbe:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $bot.readinessProbe }}
  readinessProbe:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  resources:
    {{- toYaml $bot.resources | nindent 4 }}
  securityContext:
    {{- toYaml $bot.securityContext | nindent 4 }}
{{- end }}

{{/*
baileys-keeper.podTemplate: the pod: restore, then (native) the sidecar, then the bot.
*/}}
{{- define "baileys-keeper.podTemplate" -}}
metadata:
  labels:
    {{- include "baileys-keeper.podLabels" . | nindent 4 }}
  {{- if or (not .Values.secret.existingSecret) .Values.workload.podAnnotations }}
  annotations:
    {{- /* Roll the pod when the created Secret changes. */}}
    {{- with include "baileys-keeper.secretChecksum" . }}
    checksum/secret: {{ . }}
    {{- end }}
    {{- with .Values.workload.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- end }}
spec:
  serviceAccountName: {{ include "baileys-keeper.serviceAccountName" . }}
  automountServiceAccountToken: {{ .Values.serviceAccount.automountToken }}
  terminationGracePeriodSeconds: {{ include "baileys-keeper.terminationGracePeriodSeconds" . }}
  securityContext:
    {{- toYaml .Values.workload.podSecurityContext | nindent 4 }}
  {{- with .Values.workload.imagePullSecrets }}
  imagePullSecrets:
    {{- range . }}
    - name: {{ . }}
    {{- end }}
  {{- end }}
  {{- with .Values.workload.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  {{- with .Values.workload.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.workload.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.workload.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  initContainers:
    {{- include "baileys-keeper.keeperInitContainers" . | nindent 4 }}
  containers:
    {{- include "baileys-keeper.botContainer" . | nindent 4 }}
    {{- with include "baileys-keeper.keeperContainers" . }}
    {{- . | nindent 4 }}
    {{- end }}
  volumes:
    {{- include "baileys-keeper.authVolume" . | nindent 4 }}
    {{- if .Values.bot.tmpVolume }}
    - name: bot-tmp
      emptyDir: {}
    {{- end }}
    {{- with include "baileys-keeper.secretFilesVolume" (dict "root" . "for" "workload") }}
    {{- . | nindent 4 }}
    {{- end }}
    {{- with .Values.bot.extraVolumes }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end }}

{{/*
baileys-keeper.alertLabels: an alert's labels: the chart's own (`own`), then
monitoring.prometheusRule.alertLabels, then the alert's default severity. A severity given in alertLabels
replaces the default instead of rendering a second key. The own labels are what keep the alerts of two
releases in one namespace apart: the expressions aggregate away every label but `namespace` (and
`session`), so without them both releases' alerts would have the same label set and Prometheus and
Alertmanager would take them for one alert. One session: `session`, the session id. Many sessions: the
series' own `session` (a rule label would replace it, making every session's alert one), and `keeper`,
the release's full name, for the alerts about the whole keeper, which have no session.
Call with (dict "own" D "severity" S "extra" .alertLabels).
*/}}
{{- define "baileys-keeper.alertLabels" -}}
{{- toYaml (merge (deepCopy .own) (default (dict) .extra) (dict "severity" .severity)) }}
{{- end }}

{{/*
baileys-keeper.podRegex: a regular expression for exactly this release's pod names (<fullname>-0 of a
StatefulSet, <fullname>-<template hash>-<5 chars> of a Deployment), so that another release whose name
starts with this one's is not matched. Dots in the name are escaped; unanchored (PromQL anchors it).
*/}}
{{- define "baileys-keeper.podRegex" -}}
{{- include "baileys-keeper.workloadName" . | replace "." "\\." }}-([0-9]+|[a-z0-9]{1,10}-[a-z0-9]{5})
{{- end }}

{{/*
baileys-keeper.workloadName: the name of the Deployment or StatefulSet whose pods run the keeper: the
chart's own (the full name), or with keeperOnly.enabled the user's (keeperOnly.workloadName, through tpl).
*/}}
{{- define "baileys-keeper.workloadName" -}}
{{- if .Values.keeperOnly.enabled }}{{ tpl .Values.keeperOnly.workloadName . }}{{ else }}{{ include "baileys-keeper.fullname" . }}{{ end }}
{{- end }}

{{/*
baileys-keeper.podSelector: the labels that select the pods running the keeper (for the Service and the
PodMonitor): the chart's selector labels, or with keeperOnly.enabled keeperOnly.podSelector (each value
through tpl), the labels of the user's pods.
*/}}
{{- define "baileys-keeper.podSelector" -}}
{{- if .Values.keeperOnly.enabled }}
{{- $labels := dict }}
{{- range $key, $value := .Values.keeperOnly.podSelector }}
{{- $_ := set $labels $key (tpl (toString $value) $) }}
{{- end }}
{{- toYaml $labels }}
{{- else }}
{{- include "baileys-keeper.selectorLabels" . }}
{{- end }}
{{- end }}

{{/*
baileys-keeper.promqlPodRegex: podRegex inside a PromQL string literal, where a backslash is written twice.
*/}}
{{- define "baileys-keeper.promqlPodRegex" -}}
{{- include "baileys-keeper.podRegex" . | replace "\\" "\\\\" }}
{{- end }}

{{/*
baileys-keeper.metricsSelector: PromQL label matchers for this release's sidecar series. By namespace and
pod name only: the only container of the pod that serves /metrics is the sidecar, and Prometheus's
endpoints discovery long left the `container` label off ports of init containers (native mode), so a
`container="sidecar"` matcher would match nothing there. One session: the keeper's series carry no session
label, so the pod names are what tells this release's series from another's. Many sessions: the
per-session series carry `session`, but two releases may keep sessions of the same id prefix, so the pod
names still select the release.
*/}}
{{- define "baileys-keeper.metricsSelector" -}}
namespace="{{ .Release.Namespace }}", pod=~"{{ include "baileys-keeper.promqlPodRegex" . }}"
{{- end }}

{{/*
baileys-keeper.dashboardUid: the Grafana dashboard's uid, unique per release: Grafana keeps one dashboard
per uid, so two releases sharing one would overwrite each other's. A readable prefix of the full name
plus a hash of namespace and full name (the same release name can exist in two namespaces), within
Grafana's 40-character limit and its [A-Za-z0-9_-] alphabet.
*/}}
{{- define "baileys-keeper.dashboardUid" -}}
{{- $fullname := include "baileys-keeper.fullname" . }}
{{- $prefix := regexReplaceAll "[^A-Za-z0-9_-]" $fullname "-" | trunc 23 | trimSuffix "-" }}
{{- printf "%s-%s" $prefix (sha256sum (printf "%s/%s" .Release.Namespace $fullname) | trunc 16) }}
{{- end }}
