using System.Text;
using System.Text.RegularExpressions;
using Akka.Cluster;
using Akka.Configuration;
using k8s.Models;
using MoCo.Host.Configuration;
using MoCo.Host.Metrics;
using Npgsql;

namespace MoCo.Deploy.Tests;

/// <summary>
/// Every kustomization a deployment may use, rendered by <c>kubectl kustomize</c> and parsed strictly into
/// KubernetesClient's models (<see cref="Manifests"/>), then cross-checked: the objects refer to one another, the pods'
/// ports, probes and files agree with what the host reads and serves.
/// </summary>
public sealed partial class ManifestTests
{
    [KubectlTheory]
    [MemberData(nameof(Manifests.Kustomizations), MemberType = typeof(Manifests))]
    public void Every_object_parses_strictly_into_its_kubernetes_model(string kustomization)
    {
        var manifests = Manifests.Render(kustomization);
        Assert.NotEmpty(manifests.Objects);
        foreach (var o in manifests.Objects)
        {
            Assert.False(string.IsNullOrEmpty(o.Metadata?.Name), $"{kustomization}: a {o.Kind} has no name");
            Assert.Equal(o.GetType().Name == nameof(PodMonitor) ? "PodMonitor" : o.Kind, o.Kind);
        }
        foreach (var kind in new[] { "Namespace", "ServiceAccount", "Role", "RoleBinding", "Service", "StatefulSet", "ConfigMap", "Secret", "PersistentVolumeClaim", "PodDisruptionBudget" })
        {
            Assert.Contains(manifests.Objects, o => o.Kind == kind);
        }
    }

    [KubectlFact]
    public void Strict_parsing_refuses_unknown_fields_and_kinds()
    {
        const string typo = """
            apiVersion: apps/v1
            kind: StatefulSet
            metadata:
              name: x
            spec:
              selector:
                matchLabels: {a: b}
              template:
                metadata:
                  labels: {a: b}
                spec:
                  containers:
                    - name: c
                      image: i:1
                      imagePullPolcy: Always
            """;
        var e = Assert.Throws<InvalidOperationException>(() => Manifests.Parse(typo, "typo"));
        Assert.Contains("imagePullPolcy", e.ToString());
        const string unknownKind = """
            apiVersion: example.com/v1
            kind: Widget
            metadata:
              name: x
            """;
        Assert.Throws<InvalidOperationException>(() => Manifests.Parse(unknownKind, "widget"));
        // and the real render parses (the check above refuses for the typo, not for everything)
        Assert.NotEmpty(Manifests.Render("overlays/cpu").Objects);
    }

    [KubectlTheory]
    [MemberData(nameof(Manifests.Kustomizations), MemberType = typeof(Manifests))]
    public void Every_namespaced_object_is_in_the_rendered_namespace(string kustomization)
    {
        var manifests = Manifests.Render(kustomization);
        var ns = Assert.Single(manifests.All<V1Namespace>()).Metadata.Name;
        foreach (var o in manifests.Objects.Where(o => o is not V1Namespace))
        {
            Assert.True(o.Metadata.NamespaceProperty == ns, $"{kustomization}: {o.Kind} {o.Metadata.Name} is in namespace '{o.Metadata.NamespaceProperty}', not {ns}");
        }
    }

    [KubectlTheory]
    [MemberData(nameof(Manifests.Kustomizations), MemberType = typeof(Manifests))]
    public void References_between_objects_resolve(string kustomization)
    {
        var manifests = Manifests.Render(kustomization);
        foreach (var set in manifests.All<V1StatefulSet>())
        {
            var pod = set.Spec.Template.Spec;
            var where = $"{kustomization}: StatefulSet {set.Metadata.Name}";
            if (pod.ServiceAccountName is { } account)
            {
                Assert.True(manifests.All<V1ServiceAccount>().Any(a => a.Metadata.Name == account), $"{where} runs as ServiceAccount {account}, which is not rendered");
            }
            Assert.True(manifests.All<V1Service>().Any(s => s.Metadata.Name == set.Spec.ServiceName), $"{where}: serviceName {set.Spec.ServiceName} names no Service");
            var claimTemplates = (set.Spec.VolumeClaimTemplates ?? []).Select(t => t.Metadata.Name).ToHashSet();
            var volumes = (pod.Volumes ?? []).ToDictionary(v => v.Name);
            foreach (var volume in volumes.Values)
            {
                if (volume.ConfigMap is { } cm)
                {
                    Assert.True(manifests.All<V1ConfigMap>().Any(c => c.Metadata.Name == cm.Name), $"{where}: volume {volume.Name} names ConfigMap {cm.Name}, which is not rendered");
                }
                if (volume.Secret is { } secret)
                {
                    Assert.True(manifests.All<V1Secret>().Any(s => s.Metadata.Name == secret.SecretName), $"{where}: volume {volume.Name} names Secret {secret.SecretName}, which is not rendered");
                }
                if (volume.PersistentVolumeClaim is { } claim)
                {
                    Assert.True(manifests.All<V1PersistentVolumeClaim>().Any(c => c.Metadata.Name == claim.ClaimName), $"{where}: volume {volume.Name} names claim {claim.ClaimName}, which is not rendered");
                }
            }
            foreach (var container in pod.Containers.Concat(pod.InitContainers ?? []))
            {
                foreach (var mount in container.VolumeMounts ?? [])
                {
                    Assert.True(volumes.ContainsKey(mount.Name) || claimTemplates.Contains(mount.Name), $"{where}: container {container.Name} mounts {mount.Name}, which is no volume");
                }
                foreach (var env in container.Env ?? [])
                {
                    if (env.ValueFrom?.SecretKeyRef is { } key)
                    {
                        var secret = manifests.All<V1Secret>().SingleOrDefault(s => s.Metadata.Name == key.Name);
                        Assert.True(secret is not null, $"{where}: {env.Name} reads Secret {key.Name}, which is not rendered (a reference kustomize did not rename?)");
                        Assert.True(secret!.Data?.ContainsKey(key.Key) == true || secret.StringData?.ContainsKey(key.Key) == true, $"{where}: {env.Name} reads key {key.Key} of Secret {key.Name}, which has no such key");
                    }
                    if (env.ValueFrom?.ConfigMapKeyRef is { } cmKey)
                    {
                        var cm = manifests.All<V1ConfigMap>().SingleOrDefault(c => c.Metadata.Name == cmKey.Name);
                        Assert.True(cm?.Data?.ContainsKey(cmKey.Key) == true, $"{where}: {env.Name} reads key {cmKey.Key} of ConfigMap {cmKey.Name}, which is not rendered or has no such key");
                    }
                }
            }
        }
        foreach (var binding in manifests.All<V1RoleBinding>())
        {
            Assert.True(binding.RoleRef.Kind == "Role" ? manifests.All<V1Role>().Any(r => r.Metadata.Name == binding.RoleRef.Name) : binding.RoleRef.Kind == "ClusterRole",
                $"{kustomization}: RoleBinding {binding.Metadata.Name} refers to {binding.RoleRef.Kind} {binding.RoleRef.Name}, which is not rendered");
            foreach (var subject in binding.Subjects.Where(s => s.Kind == "ServiceAccount"))
            {
                Assert.True(manifests.All<V1ServiceAccount>().Any(a => a.Metadata.Name == subject.Name), $"{kustomization}: RoleBinding {binding.Metadata.Name} binds ServiceAccount {subject.Name}, which is not rendered");
            }
        }
    }

    [KubectlTheory]
    [MemberData(nameof(Manifests.Kustomizations), MemberType = typeof(Manifests))]
    public void Environment_references_name_variables_defined_before_them(string kustomization)
    {
        var manifests = Manifests.Render(kustomization);
        foreach (var set in manifests.All<V1StatefulSet>())
        {
            foreach (var container in set.Spec.Template.Spec.Containers)
            {
                var defined = new List<string>();
                foreach (var env in container.Env ?? [])
                {
                    foreach (Match m in VariableReference().Matches(env.Value ?? ""))
                    {
                        Assert.True(defined.Contains(m.Groups[1].Value), $"{kustomization}: {container.Name}'s {env.Name} uses $({m.Groups[1].Value}), which is not defined before it (Kubernetes would pass the text unexpanded)");
                    }
                    defined.Add(env.Name);
                }
                foreach (var arg in (container.Args ?? []).Concat(container.Command ?? []))
                {
                    foreach (Match m in VariableReference().Matches(arg))
                    {
                        Assert.True(defined.Contains(m.Groups[1].Value), $"{kustomization}: {container.Name}'s argument {arg} uses an undefined variable");
                    }
                }
            }
        }
    }

    [KubectlTheory]
    [MemberData(nameof(Manifests.Kustomizations), MemberType = typeof(Manifests))]
    public void Selectors_match_the_pod_labels(string kustomization)
    {
        var manifests = Manifests.Render(kustomization);
        var podLabels = manifests.All<V1StatefulSet>().ToDictionary(s => s.Metadata.Name, s => s.Spec.Template.Metadata.Labels);
        foreach (var set in manifests.All<V1StatefulSet>())
        {
            Assert.True(Matches(set.Spec.Selector, set.Spec.Template.Metadata.Labels), $"{kustomization}: StatefulSet {set.Metadata.Name}'s selector does not match its pod template's labels");
            // the selector picks this set's pods only
            foreach (var (other, labels) in podLabels.Where(p => p.Key != set.Metadata.Name))
            {
                Assert.False(Matches(set.Spec.Selector, labels), $"{kustomization}: StatefulSet {set.Metadata.Name}'s selector also matches the pods of {other}");
            }
        }
        var workers = manifests.Workers.Spec.Template.Metadata.Labels;
        var workerService = manifests.Named<V1Service>(manifests.Workers.Spec.ServiceName);
        Assert.True(MatchLabels(workerService.Spec.Selector, workers), $"{kustomization}: Service {workerService.Metadata.Name} does not select the worker pods");
        foreach (var service in manifests.All<V1Service>())
        {
            Assert.True(podLabels.Values.Any(l => MatchLabels(service.Spec.Selector, l)), $"{kustomization}: Service {service.Metadata.Name} selects no pods");
        }
        foreach (var budget in manifests.All<V1PodDisruptionBudget>())
        {
            Assert.True(Matches(budget.Spec.Selector, workers), $"{kustomization}: PodDisruptionBudget {budget.Metadata.Name} does not select the worker pods");
        }
        foreach (var monitor in manifests.All<PodMonitor>())
        {
            Assert.True(Matches(monitor.Spec.Selector, workers), $"{kustomization}: PodMonitor {monitor.Metadata.Name} does not select the worker pods");
        }
        // Akka.Discovery.KubernetesApi lists pods with this selector: it must find the workers and nothing else
        var selector = manifests.WorkerConfig().GetString("akka.discovery.kubernetes-api.pod-label-selector");
        Assert.DoesNotContain("{0}", selector);
        var required = selector.Split(',').Select(p => p.Split('=')).ToDictionary(kv => kv[0].Trim(), kv => kv[1].Trim());
        Assert.True(MatchLabels(required, workers), $"{kustomization}: pod-label-selector '{selector}' does not match the worker pods' labels");
        foreach (var (other, labels) in podLabels.Where(p => p.Key != manifests.Workers.Metadata.Name))
        {
            Assert.False(MatchLabels(required, labels), $"{kustomization}: pod-label-selector '{selector}' also matches the pods of {other}");
        }
        // discovery only counts pods whose container of this name is running
        var container = manifests.WorkerConfig().GetString("akka.discovery.kubernetes-api.container-name");
        Assert.True(string.IsNullOrEmpty(container) || container == manifests.WorkerContainer.Name, $"{kustomization}: discovery's container-name {container} is not the worker container's name");
    }

    [KubectlTheory]
    [MemberData(nameof(Manifests.Kustomizations), MemberType = typeof(Manifests))]
    public void Role_grants_the_workers_get_list_and_watch_on_pods(string kustomization)
    {
        var manifests = Manifests.Render(kustomization);
        var account = manifests.Workers.Spec.Template.Spec.ServiceAccountName;
        Assert.False(string.IsNullOrEmpty(account), $"{kustomization}: the workers run as the default ServiceAccount; discovery needs one bound to a pod-reading Role");
        Assert.NotEqual(false, manifests.Workers.Spec.Template.Spec.AutomountServiceAccountToken);
        var roles = manifests.All<V1RoleBinding>()
            .Where(b => b.Subjects.Any(s => s.Kind == "ServiceAccount" && s.Name == account))
            .Select(b => manifests.All<V1Role>().SingleOrDefault(r => b.RoleRef.Kind == "Role" && r.Metadata.Name == b.RoleRef.Name))
            .OfType<V1Role>()
            .ToList();
        Assert.True(roles.Count > 0, $"{kustomization}: no Role is bound to ServiceAccount {account}");
        var verbs = roles.SelectMany(r => r.Rules)
            .Where(rule => (rule.ApiGroups ?? []).Contains("") && (rule.Resources.Contains("pods") || rule.Resources.Contains("*")))
            .SelectMany(rule => rule.Verbs).ToHashSet();
        foreach (var verb in new[] { "get", "list", "watch" })
        {
            Assert.True(verbs.Contains(verb) || verbs.Contains("*"), $"{kustomization}: the workers' Role does not grant {verb} on pods (it grants: {string.Join(", ", verbs)})");
        }
        // and nothing beyond reading pods
        Assert.All(roles.SelectMany(r => r.Rules), rule =>
        {
            Assert.Equal(["pods"], rule.Resources);
            Assert.Empty(rule.Verbs.Except(["get", "list", "watch"]));
        });
    }

    [KubectlTheory]
    [MemberData(nameof(Manifests.Kustomizations), MemberType = typeof(Manifests))]
    public void Named_ports_agree_with_the_configuration(string kustomization)
    {
        var manifests = Manifests.Render(kustomization);
        var config = manifests.WorkerConfig();
        var ports = (manifests.WorkerContainer.Ports ?? []).ToDictionary(p => p.Name ?? "", p => p.ContainerPort);
        var expected = new Dictionary<string, (string Key, int Port)>
        {
            ["remoting"] = ("moco.cluster.port", config.GetInt("moco.cluster.port")),
            ["management"] = ("akka.management.http.port", config.GetInt("akka.management.http.port")),
            ["data-plane"] = ("moco.cluster.data-plane-port", config.GetInt("moco.cluster.data-plane-port")),
            ["metrics"] = ("moco.metrics.port", SettingsReader.Read<MetricsSettings>(config, "moco.metrics", manifests.ConfigPath).Port),
        };
        foreach (var (name, (key, port)) in expected)
        {
            Assert.True(port > 0, $"{kustomization}: {key} is not set in {manifests.ConfigPath}");
            Assert.True(ports.TryGetValue(name, out var containerPort), $"{kustomization}: the worker container has no port named {name} ({key})");
            Assert.True(containerPort == port, $"{kustomization}: port {name} is {containerPort} in the StatefulSet but {key} = {port}");
        }
        var portName = config.GetString("akka.management.cluster.bootstrap.contact-point-discovery.port-name");
        Assert.True(ports.ContainsKey(portName), $"{kustomization}: bootstrap's port-name {portName} is no container port of the workers");

        foreach (var service in manifests.All<V1Service>())
        {
            var pods = manifests.All<V1StatefulSet>().Where(s => MatchLabels(service.Spec.Selector, s.Spec.Template.Metadata.Labels)).ToList();
            var podPorts = pods.SelectMany(s => s.Spec.Template.Spec.Containers).SelectMany(c => c.Ports ?? []).ToList();
            foreach (var port in service.Spec.Ports)
            {
                var target = port.TargetPort?.Value ?? port.Port.ToString();
                var match = podPorts.FirstOrDefault(p => p.Name == target || p.ContainerPort.ToString() == target);
                Assert.True(match is not null, $"{kustomization}: Service {service.Metadata.Name} port {port.Name} targets {target}, which its pods do not have");
                Assert.Equal(match!.ContainerPort, port.Port);
            }
        }
        foreach (var monitor in manifests.All<PodMonitor>())
        {
            foreach (var endpoint in monitor.Spec.PodMetricsEndpoints)
            {
                Assert.True(endpoint.Port is not null && ports.ContainsKey(endpoint.Port), $"{kustomization}: PodMonitor scrapes port {endpoint.Port}, which the workers do not have");
                Assert.Equal(MetricsEndpoint.MetricsPath, endpoint.Path);
            }
        }
    }

    [KubectlTheory]
    [MemberData(nameof(Manifests.Kustomizations), MemberType = typeof(Manifests))]
    public void Probes_call_the_health_paths_the_host_serves_on_its_metrics_port(string kustomization)
    {
        var manifests = Manifests.Render(kustomization);
        var container = manifests.WorkerContainer;
        foreach (var (probe, what, path) in new[]
        {
            (container.LivenessProbe, "livenessProbe", MetricsEndpoint.AlivePath),
            (container.StartupProbe, "startupProbe", MetricsEndpoint.AlivePath),
            (container.ReadinessProbe, "readinessProbe", MetricsEndpoint.ReadyPath),
        })
        {
            Assert.True(probe?.HttpGet is not null, $"{kustomization}: the worker has no HTTP {what}");
            Assert.Equal(path, probe!.HttpGet.Path);
            // the named port whose number is moco.metrics.port, where MetricsEndpoint listens
            Assert.Equal("metrics", probe.HttpGet.Port.Value);
        }
        // a liveness failure restarts the container: give startup (libtorch, the data set) its own, longer budget
        Assert.True(container.StartupProbe.PeriodSeconds * container.StartupProbe.FailureThreshold >= 120,
            $"{kustomization}: the startup probe allows less than 2 minutes to start");
    }

    [KubectlTheory]
    [MemberData(nameof(Manifests.Kustomizations), MemberType = typeof(Manifests))]
    public void Config_map_holds_the_hocon_files_the_host_reads(string kustomization)
    {
        var manifests = Manifests.Render(kustomization);
        var configMap = manifests.ConfigMapOfConfigPath;
        Assert.True(Manifests.IsGeneratedFrom(configMap.Metadata.Name, "moco-hocon"), $"{kustomization}: --config is read from ConfigMap {configMap.Metadata.Name}, not the one generated from hocon/");
        var files = Directory.GetFiles(Repository.PathOf("hocon"), "*.conf").ToDictionary(f => Path.GetFileName(f), File.ReadAllText);
        var missing = files.Keys.Except(configMap.Data.Keys).ToList();
        Assert.True(missing.Count == 0, $"{kustomization}: hocon/kustomization.yaml does not list {string.Join(", ", missing)}");
        Assert.Empty(configMap.Data.Keys.Except(files.Keys));
        foreach (var (name, text) in files)
        {
            Assert.True(text == configMap.Data[name], $"{kustomization}: ConfigMap key {name} differs from hocon/{name}");
        }

        // the host reads its sections from it without an unknown key, and the run it defines is valid
        var config = manifests.WorkerConfig();
        SettingsReader.Read<MoCo.Model.Training.RunConfig>(config, "moco.run", manifests.ConfigPath).Validate();
        var host = SettingsReader.Read<HostSettings>(config, "moco.host", manifests.ConfigPath);
        SettingsReader.Read<MetricsSettings>(config, "moco.metrics", manifests.ConfigPath);

        // run directories land on a writable volume; the root file system is read-only, /tmp is not
        var mounts = manifests.WorkerContainer.VolumeMounts ?? [];
        Assert.True(mounts.Any(m => m.ReadOnlyProperty != true && IsUnder(host.RunsRoot, m.MountPath)), $"{kustomization}: moco.host.runs-root {host.RunsRoot} is on no writable volume");
        if (manifests.WorkerContainer.SecurityContext?.ReadOnlyRootFilesystem == true)
        {
            Assert.Contains(mounts, m => m.MountPath == "/tmp" && m.ReadOnlyProperty != true);
        }
    }

    [KubectlTheory]
    [MemberData(nameof(Manifests.Kustomizations), MemberType = typeof(Manifests))]
    public void Images_have_explicit_tags_and_pull_policies(string kustomization)
    {
        var manifests = Manifests.Render(kustomization);
        foreach (var set in manifests.All<V1StatefulSet>())
        {
            foreach (var container in set.Spec.Template.Spec.Containers.Concat(set.Spec.Template.Spec.InitContainers ?? []))
            {
                var where = $"{kustomization}: {set.Metadata.Name}/{container.Name}";
                var image = container.Image ?? "";
                var tag = image.Contains('@') ? null : image[(image.LastIndexOf('/') + 1)..].Split(':').ElementAtOrDefault(1);
                Assert.True(image.Contains("@sha256:") || (!string.IsNullOrEmpty(tag) && tag != "latest"), $"{where}: image '{image}' has no explicit tag or digest");
                Assert.True(container.ImagePullPolicy is "IfNotPresent" or "Always", $"{where}: imagePullPolicy is '{container.ImagePullPolicy}', not IfNotPresent or Always");
            }
        }
        Assert.EndsWith(kustomization.Contains("gpu") ? "-cuda" : "-cpu", manifests.WorkerContainer.Image);
    }

    [KubectlTheory]
    [MemberData(nameof(Manifests.Kustomizations), MemberType = typeof(Manifests))]
    public void Grace_period_outlasts_every_coordinated_shutdown_phase(string kustomization)
    {
        var manifests = Manifests.Render(kustomization);
        // what the host's actor system sees: the file over Akka.Cluster's and Akka's defaults
        var config = manifests.WorkerConfig().WithFallback(AkkaReference.Cluster).WithFallback(ConfigurationFactory.Default());
        var shutdown = config.GetConfig("akka.coordinated-shutdown");
        Assert.True(shutdown.GetBoolean("run-by-clr-shutdown-hook"), $"{kustomization}: SIGTERM would not run coordinated shutdown (run-by-clr-shutdown-hook is off)");
        var fallback = shutdown.GetTimeSpan("default-phase-timeout");
        var phases = shutdown.GetConfig("phases").AsEnumerable().Select(kv => kv.Key).Distinct().ToList();
        Assert.Contains("cluster-leave", phases);
        var total = TimeSpan.Zero;
        foreach (var phase in phases)
        {
            var phaseConfig = shutdown.GetConfig("phases").GetConfig(phase);
            total += phaseConfig.HasPath("timeout") ? phaseConfig.GetTimeSpan("timeout") : fallback;
        }
        var grace = manifests.Workers.Spec.Template.Spec.TerminationGracePeriodSeconds ?? 30;
        // 5 s more for the process to exit after the actor system stopped
        Assert.True(grace >= total.TotalSeconds + 5,
            $"{kustomization}: terminationGracePeriodSeconds {grace} is less than the {total.TotalSeconds:F0} s that coordinated shutdown's {phases.Count} phases may take, plus 5 s");
    }

    [KubectlTheory]
    [MemberData(nameof(Manifests.Kustomizations), MemberType = typeof(Manifests))]
    public void Replicas_meet_the_bootstrap_and_run_minimum(string kustomization)
    {
        var manifests = Manifests.Render(kustomization);
        var config = manifests.WorkerConfig();
        var replicas = manifests.Workers.Spec.Replicas ?? 1;
        var contactPoints = config.GetInt("akka.management.cluster.bootstrap.contact-point-discovery.required-contact-point-nr");
        var minWorkers = config.GetInt("moco.cluster.min-workers");
        Assert.True(contactPoints <= replicas, $"{kustomization}: bootstrap waits for {contactPoints} contact points but there are {replicas} replicas: no cluster would form");
        Assert.True(minWorkers >= 1 && minWorkers <= replicas, $"{kustomization}: moco.cluster.min-workers {minWorkers} cannot be met by {replicas} replicas");
        Assert.Equal("Parallel", manifests.Workers.Spec.PodManagementPolicy);
        Assert.True(manifests.All<V1Service>().Single(s => s.Metadata.Name == manifests.Workers.Spec.ServiceName).Spec.ClusterIP == "None",
            $"{kustomization}: the workers' Service is not headless");
    }

    [KubectlTheory]
    [MemberData(nameof(Manifests.Kustomizations), MemberType = typeof(Manifests))]
    public void Gpu_variants_request_a_gpu_and_configure_nccl_and_cpu_variants_do_not(string kustomization)
    {
        var manifests = Manifests.Render(kustomization);
        var container = manifests.WorkerContainer;
        var env = (container.Env ?? []).ToDictionary(e => e.Name, e => e.Value);
        bool gpu = kustomization.Contains("gpu");
        Assert.Equal(gpu, container.Resources.Limits?.ContainsKey("nvidia.com/gpu") == true);
        if (gpu)
        {
            Assert.Equal("1", container.Resources.Limits!["nvidia.com/gpu"].ToString());
            Assert.Equal("eth0", env.GetValueOrDefault("NCCL_SOCKET_IFNAME"));
            Assert.True(env.ContainsKey("NCCL_IB_DISABLE") && env.ContainsKey("NCCL_DEBUG"), $"{kustomization}: NCCL_IB_DISABLE and NCCL_DEBUG are not set");
            Assert.Contains(container.VolumeMounts, m => m.MountPath == "/dev/shm");
        }
        else
        {
            Assert.DoesNotContain(env.Keys, k => k.StartsWith("NCCL_", StringComparison.Ordinal));
        }
    }

    [KubectlTheory]
    [MemberData(nameof(Manifests.Kustomizations), MemberType = typeof(Manifests))]
    public void Workers_journal_names_the_postgres_service_where_the_component_is_included(string kustomization)
    {
        var manifests = Manifests.Render(kustomization);
        var env = (manifests.WorkerContainer.Env ?? []).ToList();
        var journal = env.Single(e => e.Name == "MOCO_JOURNAL_CONNECTION_STRING").Value;
        // the password comes from the Secret through $(MOCO_POSTGRES_PASSWORD)
        var builder = new NpgsqlConnectionStringBuilder(journal.Replace("$(MOCO_POSTGRES_PASSWORD)", "x"));
        Assert.Equal("x", builder.Password);
        var service = manifests.All<V1Service>().SingleOrDefault(s => s.Metadata.Name == builder.Host);
        if (!kustomization.Contains("postgres"))
        {
            Assert.Null(service); // the journal's database is outside these manifests (k8s/README.md, "Journal")
            return;
        }
        Assert.True(service is not null, $"{kustomization}: MOCO_JOURNAL_CONNECTION_STRING names host {builder.Host}, which is no Service");
        Assert.Contains(service!.Spec.Ports, p => p.Port == builder.Port);
        var postgres = manifests.Named<V1StatefulSet>("moco-postgres");
        Assert.True(MatchLabels(service.Spec.Selector, postgres.Spec.Template.Metadata.Labels), $"{kustomization}: Service {builder.Host} does not select the PostgreSQL pod");
        var pgEnv = postgres.Spec.Template.Spec.Containers.Single().Env.ToDictionary(e => e.Name);
        Assert.Equal(builder.Username, pgEnv["POSTGRES_USER"].Value);
        Assert.Equal(builder.Database, pgEnv["POSTGRES_DB"].Value);
        var workerPassword = env.Single(e => e.Name == "MOCO_POSTGRES_PASSWORD").ValueFrom.SecretKeyRef;
        var serverPassword = pgEnv["POSTGRES_PASSWORD"].ValueFrom.SecretKeyRef;
        Assert.Equal((workerPassword.Name, workerPassword.Key), (serverPassword.Name, serverPassword.Key));
    }

    [KubectlTheory]
    [MemberData(nameof(Manifests.Kustomizations), MemberType = typeof(Manifests))]
    public void Secret_placeholders_are_marked_for_replacement(string kustomization)
    {
        // The base ships placeholders so that every kustomization renders; they must be recognisable as such.
        var secret = Manifests.Render(kustomization).Named<V1Secret>("moco-secrets");
        foreach (var key in new[] { "cluster-secret", "postgres-password" })
        {
            Assert.True(secret.Data.ContainsKey(key), $"{kustomization}: Secret moco-secrets has no {key}");
            Assert.StartsWith("CHANGE-ME", Encoding.UTF8.GetString(secret.Data[key]));
        }
    }

    private static bool Matches(V1LabelSelector selector, IDictionary<string, string> labels)
    {
        Assert.True(selector.MatchExpressions is null || selector.MatchExpressions.Count == 0, "matchExpressions are not checked by these tests");
        return MatchLabels(selector.MatchLabels, labels);
    }

    private static bool MatchLabels(IDictionary<string, string>? required, IDictionary<string, string>? labels) =>
        required is { Count: > 0 } && labels is not null && required.All(kv => labels.TryGetValue(kv.Key, out var v) && v == kv.Value);

    private static bool IsUnder(string path, string folder) =>
        Path.GetFullPath(path).TrimEnd('/').StartsWith(folder.TrimEnd('/') + "/", StringComparison.Ordinal) || Path.GetFullPath(path).TrimEnd('/') == folder.TrimEnd('/');

    [GeneratedRegex(@"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")]
    private static partial Regex VariableReference();
}
