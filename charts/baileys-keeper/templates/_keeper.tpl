{{/*
The keeper for a pod of your own chart (keeperOnly.enabled): named templates a bot chart that has this
chart as a dependency includes into its own Deployment or StatefulSet, so the bot's container, security
context, Service and everything else stay the bot chart's. Call each with this chart's context, which
Helm (3.7+, helm/helm#9957) gives the parent as `.Subcharts` (by the dependency's name, or its alias):

  {{- $keeper := index .Subcharts "baileys-keeper" }}
  spec:
    terminationGracePeriodSeconds: {{ include "baileys-keeper.terminationGracePeriodSeconds" $keeper }}
    initContainers:
      {{- include "baileys-keeper.initContainers" $keeper | nindent 6 }}
    containers:
      - name: bot
        volumeMounts:
          {{- include "baileys-keeper.botVolumeMounts" $keeper | nindent 10 }}
      {{- include "baileys-keeper.containers" $keeper | nindent 6 }}
    volumes:
      {{- include "baileys-keeper.volumes" $keeper | nindent 6 }}

deploy/helm/my-bot is a complete example; docs/kubernetes.md explains it. Each fails the render unless
keeperOnly.enabled, so that this chart never runs a bot workload of its own beside the one they go into
(two pods would keep one session).
*/}}

{{- define "baileys-keeper.requireKeeperOnly" -}}
{{- if not .Values.keeperOnly.enabled }}
{{- fail "the baileys-keeper templates for a pod of your own (baileys-keeper.initContainers, .containers, .volumes, .botVolumeMounts, .podAnnotations) need keeperOnly.enabled=true, with keeperOnly.workloadName and keeperOnly.podSelector naming your workload: otherwise this chart also runs a bot pod of its own, a second writer of the same session" }}
{{- end }}
{{- include "baileys-keeper.validate" . }}
{{- end }}

{{/*
baileys-keeper.initContainers: list items for the pod's initContainers: `restore` (must come before any
container that reads the auth directory), then in native mode the `sidecar` (restartPolicy Always).
*/}}
{{- define "baileys-keeper.initContainers" -}}
{{- $_ := include "baileys-keeper.requireKeeperOnly" . }}
{{- include "baileys-keeper.keeperInitContainers" . }}
{{- end }}

{{/*
baileys-keeper.containers: list items for the pod's containers: the `sidecar` in classic mode
(sidecar.mode=classic, with its preStop hook of bot.stopSeconds); nothing in native mode.
*/}}
{{- define "baileys-keeper.containers" -}}
{{- $_ := include "baileys-keeper.requireKeeperOnly" . }}
{{- include "baileys-keeper.keeperContainers" . }}
{{- end }}

{{/*
baileys-keeper.volumes: list items for the pod's volumes: `baileys-keeper-auth` (the emptyDir the keeper
restores into and backs up from, authVolume.*) and, when the API token, encryption key or webhook secret
is set, `baileys-keeper-secret-files`.
*/}}
{{- define "baileys-keeper.volumes" -}}
{{- $_ := include "baileys-keeper.requireKeeperOnly" . }}
{{- include "baileys-keeper.keeperVolumes" . }}
{{- end }}

{{/*
baileys-keeper.botVolumeMounts: list items for the bot container's volumeMounts: the auth volume at
bot.authDir (bot.sessionsDir with keeper.sessionsDir.enabled), where the bot's useMultiFileAuthState
directory is. Remove any volume the bot mounted there before.
*/}}
{{- define "baileys-keeper.botVolumeMounts" -}}
{{- $_ := include "baileys-keeper.requireKeeperOnly" . }}
{{- include "baileys-keeper.botAuthMount" . }}
{{- end }}

{{/*
baileys-keeper.podAnnotations: map entries for the pod template's annotations: a checksum of the Secret
the chart creates, so the pod rolls when it changes (nothing with secret.existingSecret). Place it where
a map's entries go (`annotations:` then this with nindent), or skip it.
*/}}
{{- define "baileys-keeper.podAnnotations" -}}
{{- $_ := include "baileys-keeper.requireKeeperOnly" . }}
{{- with include "baileys-keeper.secretChecksum" . -}}
checksum/baileys-keeper-secret: {{ . }}
{{- end }}
{{- end }}
