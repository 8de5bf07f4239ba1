using System.Text;
using System.Text.RegularExpressions;
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
        foreach (var kind in new[] { "Namespace", "ServiceAccount", "Service", "StatefulSet", "ConfigMap", "Secret", "PodDisruptionBudget" })
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
        // each Service selects its StatefulSet's pods and no others
        foreach (var service in manifests.All<V1Service>())
        {
            var selected = podLabels.Where(p => MatchLabels(service.Spec.Selector, p.Value)).Select(p => p.Key).ToList();
            var governed = manifests.All<V1StatefulSet>().Where(s => s.Spec.ServiceName == service.Metadata.Name).Select(s => s.Metadata.Name).ToList();
            Assert.True(selected.Count > 0, $"{kustomization}: Service {service.Metadata.Name} selects no pods");
            if (governed.Count > 0)
            {
                Assert.True(selected.SequenceEqual(governed), $"{kustomization}: Service {service.Metadata.Name} selects the pods of {string.Join(", ", selected)}, not of {string.Join(", ", governed)}, which it governs");
            }
        }
        Assert.NotEqual(manifests.Trainer.Spec.ServiceName, manifests.Workers.Spec.ServiceName);
        foreach (var monitor in manifests.All<PodMonitor>())
        {
            foreach (var (name, labels) in podLabels)
            {
                bool moco = name == manifests.Trainer.Metadata.Name || name == manifests.Workers.Metadata.Name;
                Assert.True(Matches(monitor.Spec.Selector, labels) == moco, $"{kustomization}: PodMonitor {monitor.Metadata.Name} {(moco ? "does not select" : "also selects")} the pods of {name}");
            }
        }
    }

    [KubectlTheory]
    [MemberData(nameof(Manifests.Kustomizations), MemberType = typeof(Manifests))]
    public void Disruption_budget_takes_one_worker_at_a_time_and_leaves_the_trainer_to_its_interrupt(string kustomization)
    {
        var manifests = Manifests.Render(kustomization);
        var budget = Assert.Single(manifests.All<V1PodDisruptionBudget>());
        Assert.True(Matches(budget.Spec.Selector, manifests.Workers.Spec.Template.Metadata.Labels), $"{kustomization}: PodDisruptionBudget {budget.Metadata.Name} does not select the worker pods");
        Assert.Equal("1", budget.Spec.MaxUnavailable?.Value);
        Assert.Null(budget.Spec.MinAvailable);
        // no budget on the trainer: a drain interrupts the run with a checkpoint and the new pod resumes (k8s/base/pdb.yaml)
        Assert.False(Matches(budget.Spec.Selector, manifests.Trainer.Spec.Template.Metadata.Labels), $"{kustomization}: PodDisruptionBudget {budget.Metadata.Name} also selects the trainer");
    }

    [KubectlTheory]
    [MemberData(nameof(Manifests.Kustomizations), MemberType = typeof(Manifests))]
    public void No_role_is_bound_and_no_token_is_mounted(string kustomization)
    {
        // Nothing in the pods calls the Kubernetes API: workers find the trainer by DNS, not through Akka.Management's
        // discovery (k8s/README.md, "Why no cluster bootstrap"). So no permissions, and no credential in the pods.
        var manifests = Manifests.Render(kustomization);
        foreach (var kind in new[] { "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding" })
        {
            Assert.DoesNotContain(manifests.Objects, o => o.Kind == kind);
        }
        foreach (var set in manifests.MocoSets)
        {
            var pod = set.Spec.Template.Spec;
            var where = $"{kustomization}: StatefulSet {set.Metadata.Name}";
            Assert.False(string.IsNullOrEmpty(pod.ServiceAccountName) || pod.ServiceAccountName == "default", $"{where} runs as the namespace's default ServiceAccount, which others may bind roles to");
            var account = manifests.Named<V1ServiceAccount>(pod.ServiceAccountName);
            Assert.True(account.AutomountServiceAccountToken == false, $"{where}: ServiceAccount {account.Metadata.Name} does not turn off automountServiceAccountToken");
            Assert.True((pod.AutomountServiceAccountToken ?? account.AutomountServiceAccountToken) == false, $"{where}: the pods get a ServiceAccount token mounted");
            Assert.DoesNotContain(pod.Volumes ?? [], v => v.Projected?.Sources?.Any(p => p.ServiceAccountToken is not null) == true);
        }
    }

    [KubectlTheory]
    [MemberData(nameof(Manifests.Kustomizations), MemberType = typeof(Manifests))]
    public void Trainer_and_workers_run_the_commands_of_the_head_and_the_worker_group(string kustomization)
    {
        var manifests = Manifests.Render(kustomization);
        var trainer = manifests.TrainerContainer.Args ?? [];
        var worker = manifests.WorkerContainer.Args ?? [];
        Assert.Equal("train", trainer.FirstOrDefault());
        Assert.Contains("--continue", trainer); // resume the run in --run-dir, or start it there
        Assert.Equal("node", worker.FirstOrDefault());
        Assert.DoesNotContain("--continue", worker);
        Assert.Contains("--stay", worker); // a trainer restart or a run's end must not crash-loop the worker pods
        Assert.Equal(manifests.ConfigPathOf(manifests.Trainer), manifests.ConfigPathOf(manifests.Workers));
        Assert.Equal(manifests.ConfigMapOf(manifests.Trainer).Metadata.Name, manifests.ConfigMapOf(manifests.Workers).Metadata.Name);
        Assert.Equal(1, manifests.Trainer.Spec.Replicas);
        Assert.Null(manifests.TrainerContainer.Command); // the image's entrypoint is moco
        Assert.Null(manifests.WorkerContainer.Command);
    }

    [KubectlTheory]
    [MemberData(nameof(Manifests.Kustomizations), MemberType = typeof(Manifests))]
    public void Workers_join_the_trainer_at_the_address_it_advertises(string kustomization)
    {
        var manifests = Manifests.Render(kustomization);
        var trainer = manifests.Trainer;
        var config = manifests.FileConfig();
        var service = manifests.Named<V1Service>(trainer.Spec.ServiceName);
        Assert.True(service.Spec.ClusterIP == "None" && service.Spec.PublishNotReadyAddresses == true,
            $"{kustomization}: Service {service.Metadata.Name} must be headless and publish pods before they are ready, or the trainer's pod has no DNS name before it is Up");
        // pod 0 of the trainer StatefulSet, by its name in the governing Service, at moco.cluster.port
        var host = $"{trainer.Metadata.Name}-0.{trainer.Spec.ServiceName}";
        var port = config.GetInt("moco.cluster.port");
        Assert.Equal($"{host}:{port}", manifests.Argument(manifests.Workers, "--join"));
        Assert.Contains(service.Spec.Ports, p => p.Port == port && p.Name == "remoting");

        // the trainer advertises exactly that name: Akka.Remote drops messages addressed to another one
        var env = manifests.TrainerContainer.Env.ToList();
        var podName = env.FindIndex(e => e.Name == "POD_NAME");
        var advertised = env.FindIndex(e => e.Name == "MOCO_CLUSTER_PUBLIC_HOSTNAME");
        Assert.True(podName >= 0 && env[podName].ValueFrom?.FieldRef?.FieldPath == "metadata.name", $"{kustomization}: the trainer does not define POD_NAME from metadata.name");
        Assert.True(advertised > podName, $"{kustomization}: the trainer's MOCO_CLUSTER_PUBLIC_HOSTNAME is not defined after POD_NAME");
        Assert.Equal($"$(POD_NAME).{trainer.Spec.ServiceName}", env[advertised].Value);
        var trainerCluster = SettingsReader.Read<ClusterSettings>(manifests.HostConfigOf(trainer), "moco.cluster", manifests.ConfigPath).Validate();
        Assert.Equal(host, trainerCluster.PublicHostnameOrHostname());
        Assert.Empty(trainerCluster.SeedAddresses()); // the trainer forms the cluster by joining itself

        // what the workers' moco node reads: the trainer's Akka address as its seed, and its own pod IP as its address
        var workerCluster = SettingsReader.Read<ClusterSettings>(manifests.HostConfigOf(manifests.Workers), "moco.cluster", manifests.ConfigPath).Validate();
        // over TLS (both read the cluster certificate): the scheme of a TLS address, the same on both sides
        Assert.True(trainerCluster.Tls && workerCluster.Tls, $"{kustomization}: remoting without the cluster certificate");
        Assert.Equal([$"akka.ssl.tcp://{ClusterSettings.SystemName}@{trainerCluster.PublicHostnameOrHostname()}:{trainerCluster.Port}"], workerCluster.SeedAddresses());
        Assert.Equal(Manifests.PodIp, workerCluster.PublicHostnameOrHostname());
    }

    [KubectlTheory]
    [MemberData(nameof(Manifests.Kustomizations), MemberType = typeof(Manifests))]
    public void Every_moco_environment_variable_is_a_setting_the_host_reads(string kustomization)
    {
        var manifests = Manifests.Render(kustomization);
        foreach (var set in manifests.MocoSets)
        {
            var problems = UnreadMocoVariables(manifests.EnvironmentOf(set));
            Assert.True(problems.Count == 0, $"{kustomization}: {set.Metadata.Name}: {string.Join("; ", problems)}");
            // and the whole configuration, environment included, reads and validates as the host does at start-up
            var config = manifests.HostConfigOf(set);
            SettingsReader.CheckSections(config, "moco", Presets.Sections, manifests.ConfigPath);
            SettingsReader.Read<MoCo.Model.Training.RunConfig>(config, "moco.run", manifests.ConfigPath).Validate();
            SettingsReader.Read<HostSettings>(config, "moco.host", manifests.ConfigPath);
            SettingsReader.Read<ClusterSettings>(config, "moco.cluster", manifests.ConfigPath).Validate();
            SettingsReader.Read<JournalSettings>(config, "moco.journal", manifests.ConfigPath).Validate();
            SettingsReader.Read<MetricsSettings>(config, "moco.metrics", manifests.ConfigPath);
            SettingsReader.Read<DataPlaneSettings>(config, "moco.data-plane", manifests.ConfigPath);
        }
    }

    [Fact]
    public void Environment_check_refuses_a_variable_the_host_would_refuse_or_ignore()
    {
        var env = new System.Collections.Specialized.OrderedDictionary
        {
            ["MOCO_CLUSTER_SECRET"] = Manifests.SecretValue,
            ["MOCO_RUN_NAME"] = "moco", // moco.run has no key "name": the host refuses to start
            ["MOCO_POSTGRES_PASSWORD"] = "x", // no section of the host: read by nothing, looks like a setting
            ["RUN_DIR_NAME"] = "moco",
        };
        var problems = UnreadMocoVariables(env);
        Assert.Equal(2, problems.Count);
        Assert.Contains("MOCO_RUN_NAME", problems[0]);
        Assert.Contains("names no key of moco.run", problems[0]);
        Assert.Contains("MOCO_POSTGRES_PASSWORD", problems[1]);
    }

    [KubectlTheory]
    [MemberData(nameof(Manifests.Kustomizations), MemberType = typeof(Manifests))]
    public void Named_ports_agree_with_the_configuration(string kustomization)
    {
        var manifests = Manifests.Render(kustomization);
        var config = manifests.FileConfig();
        var expected = new Dictionary<string, (string Key, int Port)>
        {
            ["remoting"] = ("moco.cluster.port", config.GetInt("moco.cluster.port")),
            ["data-plane"] = ("moco.cluster.data-plane-port", config.GetInt("moco.cluster.data-plane-port")),
            ["metrics"] = ("moco.metrics.port", SettingsReader.Read<MetricsSettings>(config, "moco.metrics", manifests.ConfigPath).Port),
        };
        foreach (var set in manifests.MocoSets)
        {
            var ports = (Manifests.ContainerOf(set).Ports ?? []).ToDictionary(p => p.Name ?? "", p => p.ContainerPort);
            foreach (var (name, (key, port)) in expected)
            {
                Assert.True(port > 0, $"{kustomization}: {key} is not set in {manifests.ConfigPath}");
                Assert.True(ports.TryGetValue(name, out var containerPort), $"{kustomization}: {set.Metadata.Name}'s container has no port named {name} ({key})");
                Assert.True(containerPort == port, $"{kustomization}: port {name} is {containerPort} in {set.Metadata.Name} but {key} = {port}");
            }
            // nothing serves Akka.Management's port any more
            Assert.True(ports.Keys.Order().SequenceEqual(expected.Keys.Order()), $"{kustomization}: {set.Metadata.Name} names ports {string.Join(", ", ports.Keys)}; only {string.Join(", ", expected.Keys)} are served");
        }

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
                Assert.True(endpoint.Port == "metrics", $"{kustomization}: PodMonitor scrapes port {endpoint.Port}, not the pods' port metrics");
                Assert.Equal(MetricsEndpoint.MetricsPath, endpoint.Path);
            }
        }
    }

    [KubectlTheory]
    [MemberData(nameof(Manifests.Kustomizations), MemberType = typeof(Manifests))]
    public void Probes_call_the_health_paths_the_host_serves_on_its_metrics_port(string kustomization)
    {
        var manifests = Manifests.Render(kustomization);
        foreach (var set in manifests.MocoSets)
        {
            var container = Manifests.ContainerOf(set);
            foreach (var (probe, what, path) in new[]
            {
                (container.LivenessProbe, "livenessProbe", MetricsEndpoint.AlivePath),
                (container.StartupProbe, "startupProbe", MetricsEndpoint.AlivePath),
                (container.ReadinessProbe, "readinessProbe", MetricsEndpoint.ReadyPath),
            })
            {
                Assert.True(probe?.HttpGet is not null, $"{kustomization}: {set.Metadata.Name} has no HTTP {what}");
                Assert.Equal(path, probe!.HttpGet.Path);
                // the named port whose number is moco.metrics.port, where MetricsEndpoint listens
                Assert.Equal("metrics", probe.HttpGet.Port.Value);
            }
            // a liveness failure restarts the container: give startup (libtorch, the data set) its own, longer budget
            Assert.True(container.StartupProbe.PeriodSeconds * container.StartupProbe.FailureThreshold >= 120,
                $"{kustomization}: {set.Metadata.Name}'s startup probe allows less than 2 minutes to start");
        }
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
        var config = manifests.FileConfig();
        SettingsReader.CheckSections(config, "moco", Presets.Sections, manifests.ConfigPath);
        SettingsReader.Read<MoCo.Model.Training.RunConfig>(config, "moco.run", manifests.ConfigPath).Validate();
        var host = SettingsReader.Read<HostSettings>(config, "moco.host", manifests.ConfigPath);
        SettingsReader.Read<MetricsSettings>(config, "moco.metrics", manifests.ConfigPath);

        // runs-root is writable in every pod (the trainer's volume; scratch on a worker); the root file system is
        // read-only, /tmp is not
        foreach (var set in manifests.MocoSets)
        {
            var container = Manifests.ContainerOf(set);
            var mounts = container.VolumeMounts ?? [];
            Assert.True(mounts.Any(m => m.ReadOnlyProperty != true && IsUnder(host.RunsRoot, m.MountPath)), $"{kustomization}: moco.host.runs-root {host.RunsRoot} is on no writable volume of {set.Metadata.Name}");
            if (container.SecurityContext?.ReadOnlyRootFilesystem == true)
            {
                Assert.Contains(mounts, m => m.MountPath == "/tmp" && m.ReadOnlyProperty != true);
            }
        }
    }

    [KubectlTheory]
    [MemberData(nameof(Manifests.Kustomizations), MemberType = typeof(Manifests))]
    public void Trainer_keeps_the_run_directory_on_its_own_claim_and_workers_keep_nothing(string kustomization)
    {
        var manifests = Manifests.Render(kustomization);
        var host = SettingsReader.Read<HostSettings>(manifests.FileConfig(), "moco.host", manifests.ConfigPath);
        var template = Assert.Single(manifests.Trainer.Spec.VolumeClaimTemplates ?? []);
        Assert.Equal(["ReadWriteOnce"], template.Spec.AccessModes);
        var mount = manifests.TrainerContainer.VolumeMounts.SingleOrDefault(m => m.Name == template.Metadata.Name);
        Assert.True(mount is not null && mount.ReadOnlyProperty != true, $"{kustomization}: the trainer does not mount its claim {template.Metadata.Name} writable");
        Assert.Equal(host.RunsRoot.TrimEnd('/'), mount!.MountPath.TrimEnd('/'));
        Assert.DoesNotContain(manifests.Trainer.Spec.Template.Spec.Volumes ?? [], v => v.Name == template.Metadata.Name); // a volume would hide the claim

        // --run-dir, as the kubelet expands it, is one folder directly below runs-root: the claim
        var runDir = Manifests.Expand(manifests.Argument(manifests.Trainer, "--run-dir"), manifests.EnvironmentOf(manifests.Trainer));
        Assert.DoesNotContain("$(", runDir);
        Assert.Equal(host.RunsRoot.TrimEnd('/'), Path.GetDirectoryName(runDir));
        Assert.Matches("^[a-z0-9][a-z0-9._-]*$", Path.GetFileName(runDir));

        // workers write nothing durable: no claim and no claim template
        Assert.Empty(manifests.Workers.Spec.VolumeClaimTemplates ?? []);
        Assert.DoesNotContain(manifests.Workers.Spec.Template.Spec.Volumes ?? [], v => v.PersistentVolumeClaim is not null);
        Assert.Empty(manifests.All<V1PersistentVolumeClaim>());
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
        foreach (var set in manifests.MocoSets)
        {
            Assert.EndsWith(kustomization.Contains("gpu") ? "-cuda" : "-cpu", Manifests.ContainerOf(set).Image);
        }
        Assert.Equal(manifests.TrainerContainer.Image, manifests.WorkerContainer.Image); // one protocol, one checkpoint format
    }

    [KubectlTheory]
    [MemberData(nameof(Manifests.Kustomizations), MemberType = typeof(Manifests))]
    public void Grace_period_outlasts_every_coordinated_shutdown_phase(string kustomization)
    {
        var manifests = Manifests.Render(kustomization);
        // what the host's actor system sees: the file over Akka.Cluster's and Akka's defaults
        var config = manifests.FileConfig().WithFallback(AkkaReference.Cluster).WithFallback(ConfigurationFactory.Default());
        var shutdown = config.GetConfig("akka.coordinated-shutdown");
        // SIGTERM is the commands' (the host turns Akka's CLR hook off); the actor system's stop runs these phases
        var fallback = shutdown.GetTimeSpan("default-phase-timeout");
        var phases = shutdown.GetConfig("phases").AsEnumerable().Select(kv => kv.Key).Distinct().ToList();
        Assert.Contains("cluster-leave", phases);
        var total = TimeSpan.Zero;
        foreach (var phase in phases)
        {
            var phaseConfig = shutdown.GetConfig("phases").GetConfig(phase);
            total += phaseConfig.HasPath("timeout") ? phaseConfig.GetTimeSpan("timeout") : fallback;
        }
        // 5 s more for the process to exit after the actor system stopped; the trainer first finishes the chunk in
        // flight and writes its checkpoint, for which k8s/base/trainer.yaml allows at least 2 minutes more
        foreach (var (set, before) in new[] { (manifests.Workers, 0), (manifests.Trainer, 120) })
        {
            var grace = set.Spec.Template.Spec.TerminationGracePeriodSeconds ?? 30;
            Assert.True(grace >= before + total.TotalSeconds + 5,
                $"{kustomization}: {set.Metadata.Name}'s terminationGracePeriodSeconds {grace} is less than {before} s before shutdown plus the {total.TotalSeconds:F0} s that coordinated shutdown's {phases.Count} phases may take, plus 5 s");
        }
    }

    [KubectlTheory]
    [MemberData(nameof(Manifests.Kustomizations), MemberType = typeof(Manifests))]
    public void Replicas_meet_the_run_minimum(string kustomization)
    {
        var manifests = Manifests.Render(kustomization);
        var minWorkers = manifests.FileConfig().GetInt("moco.cluster.min-workers");
        // the trainer's own in-process worker (one device slot: moco train's --devices is left at 1) and the worker pods
        Assert.DoesNotContain("--devices", manifests.TrainerContainer.Args);
        Assert.DoesNotContain("--devices", manifests.WorkerContainer.Args);
        var workers = 1 + (manifests.Workers.Spec.Replicas ?? 1);
        Assert.True(minWorkers >= 2 && minWorkers <= workers, $"{kustomization}: moco.cluster.min-workers {minWorkers} cannot be met by the trainer and {workers - 1} worker pods, or needs no worker pod");
        Assert.Equal(1, manifests.Trainer.Spec.Replicas);
        Assert.Equal("Parallel", manifests.Workers.Spec.PodManagementPolicy);
        foreach (var set in manifests.MocoSets)
        {
            Assert.True(manifests.Named<V1Service>(set.Spec.ServiceName).Spec.ClusterIP == "None", $"{kustomization}: {set.Metadata.Name}'s Service is not headless");
        }
    }

    [KubectlTheory]
    [MemberData(nameof(Manifests.Kustomizations), MemberType = typeof(Manifests))]
    public void Gpu_variants_request_a_gpu_and_configure_nccl_and_cpu_variants_do_not(string kustomization)
    {
        var manifests = Manifests.Render(kustomization);
        bool gpu = kustomization.Contains("gpu");
        foreach (var set in manifests.MocoSets)
        {
            var container = Manifests.ContainerOf(set);
            var env = (container.Env ?? []).ToDictionary(e => e.Name, e => e.Value);
            var where = $"{kustomization}: {set.Metadata.Name}";
            Assert.True(gpu == (container.Resources.Limits?.ContainsKey("nvidia.com/gpu") == true), $"{where}: {(gpu ? "no" : "a")} GPU limit");
            if (gpu)
            {
                Assert.Equal("1", container.Resources.Limits!["nvidia.com/gpu"].ToString());
                Assert.Equal("eth0", env.GetValueOrDefault("NCCL_SOCKET_IFNAME"));
                Assert.True(env.ContainsKey("NCCL_IB_DISABLE") && env.ContainsKey("NCCL_DEBUG"), $"{where}: NCCL_IB_DISABLE and NCCL_DEBUG are not set");
                Assert.Contains(container.VolumeMounts, m => m.MountPath == "/dev/shm");
                Assert.Contains(set.Spec.Template.Spec.Tolerations ?? [], t => t.Key == "nvidia.com/gpu");
            }
            else
            {
                Assert.DoesNotContain(env.Keys, k => k.StartsWith("NCCL_", StringComparison.Ordinal));
            }
        }
    }

    [KubectlTheory]
    [MemberData(nameof(Manifests.Kustomizations), MemberType = typeof(Manifests))]
    public void Trainer_journals_to_postgres_where_the_component_is_included_and_to_its_volume_otherwise(string kustomization)
    {
        var manifests = Manifests.Render(kustomization);
        // only the trainer's run recorder writes the journal
        Assert.DoesNotContain(manifests.WorkerContainer.Env ?? [], e => e.Name.StartsWith("MOCO_JOURNAL_", StringComparison.Ordinal));
        var journal = SettingsReader.Read<JournalSettings>(manifests.HostConfigOf(manifests.Trainer), "moco.journal", manifests.ConfigPath);
        var env = (manifests.TrainerContainer.Env ?? []).ToList();
        if (!kustomization.Contains("postgres"))
        {
            // empty: journal.db in the run directory, on the trainer's claim (Trainer_keeps_the_run_directory_...)
            Assert.Equal("", journal.ConnectionString);
            Assert.DoesNotContain(manifests.All<V1StatefulSet>(), s => s.Metadata.Name == "moco-postgres");
            return;
        }
        var template = env.Single(e => e.Name == "MOCO_JOURNAL_CONNECTION_STRING").Value;
        Assert.Contains("$(POSTGRES_PASSWORD)", template); // from the Secret, defined before it (Environment_references_...)
        var builder = new NpgsqlConnectionStringBuilder(journal.ConnectionString);
        Assert.Equal(Manifests.SecretValue, builder.Password);
        var service = manifests.All<V1Service>().SingleOrDefault(s => s.Metadata.Name == builder.Host);
        Assert.True(service is not null, $"{kustomization}: MOCO_JOURNAL_CONNECTION_STRING names host {builder.Host}, which is no Service");
        Assert.Contains(service!.Spec.Ports, p => p.Port == builder.Port);
        var postgres = manifests.Named<V1StatefulSet>("moco-postgres");
        Assert.True(MatchLabels(service.Spec.Selector, postgres.Spec.Template.Metadata.Labels), $"{kustomization}: Service {builder.Host} does not select the PostgreSQL pod");
        var pgEnv = postgres.Spec.Template.Spec.Containers.Single().Env.ToDictionary(e => e.Name);
        Assert.Equal(builder.Username, pgEnv["POSTGRES_USER"].Value);
        Assert.Equal(builder.Database, pgEnv["POSTGRES_DB"].Value);
        var trainerPassword = env.Single(e => e.Name == "POSTGRES_PASSWORD").ValueFrom.SecretKeyRef;
        var serverPassword = pgEnv["POSTGRES_PASSWORD"].ValueFrom.SecretKeyRef;
        Assert.Equal((trainerPassword.Name, trainerPassword.Key), (serverPassword.Name, serverPassword.Key));
    }

    [KubectlTheory]
    [MemberData(nameof(Manifests.Kustomizations), MemberType = typeof(Manifests))]
    public void Secret_placeholders_are_marked_for_replacement(string kustomization)
    {
        // The base ships placeholders so that every kustomization renders; they must be recognisable as such (the host
        // refuses each of them by name: ClusterSettings, JournalSettings, ClusterCertificate).
        var manifests = Manifests.Render(kustomization);
        var secret = manifests.Named<V1Secret>("moco-secrets");
        foreach (var key in new[] { "cluster-secret", "postgres-password" })
        {
            Assert.True(secret.Data.ContainsKey(key), $"{kustomization}: Secret moco-secrets has no {key}");
            Assert.StartsWith("CHANGE-ME", Encoding.UTF8.GetString(secret.Data[key]));
        }

        var tls = manifests.Named<V1Secret>("moco-cluster-tls");
        Assert.StartsWith("CHANGE-ME", Encoding.UTF8.GetString(tls.Data["cluster.pem"]));
    }

    [KubectlTheory]
    [MemberData(nameof(Manifests.Kustomizations), MemberType = typeof(Manifests))]
    public void Every_pod_presents_the_cluster_certificate_from_its_secret(string kustomization)
    {
        // TLS remoting: trainer and workers read the certificate where MOCO_CLUSTER_CERTIFICATE says, from the Secret
        var manifests = Manifests.Render(kustomization);
        foreach (var set in manifests.MocoSets)
        {
            var where = $"{kustomization}: StatefulSet {set.Metadata.Name}";
            var container = Manifests.ContainerOf(set);
            var variable = Assert.Single(container.Env, e => e.Name == "MOCO_CLUSTER_CERTIFICATE");
            var mount = Assert.Single(container.VolumeMounts, m => variable.Value.StartsWith(m.MountPath.TrimEnd('/') + "/", StringComparison.Ordinal));
            Assert.True(mount.ReadOnlyProperty == true, $"{where}: the certificate's volume is writable");
            var volume = Assert.Single(set.Spec.Template.Spec.Volumes, v => v.Name == mount.Name);
            Assert.Equal(manifests.Named<V1Secret>("moco-cluster-tls").Metadata.Name, volume.Secret?.SecretName);
            var key = variable.Value[(mount.MountPath.TrimEnd('/').Length + 1)..];
            Assert.True(manifests.Named<V1Secret>("moco-cluster-tls").Data.ContainsKey(key), $"{where}: the Secret has no {key}");
            Assert.True((volume.Secret!.DefaultMode ?? 420) % 8 == 0, $"{where}: the private key is readable by others");
            Assert.Contains(container.Env, e => e.Name == "MOCO_CLUSTER_SECRET" && e.ValueFrom?.SecretKeyRef?.Name == manifests.Named<V1Secret>("moco-secrets").Metadata.Name);
        }
    }

    [KubectlTheory]
    [MemberData(nameof(Manifests.Kustomizations), MemberType = typeof(Manifests))]
    public void The_network_policy_lets_only_the_runs_pods_reach_remoting_and_the_data_plane_and_only_monitoring_the_metrics(string kustomization)
    {
        var manifests = Manifests.Render(kustomization);
        var policy = manifests.Named<V1NetworkPolicy>("moco-run");
        Assert.Equal(["Ingress"], policy.Spec.PolicyTypes);
        int Port(string name) => manifests.TrainerContainer.Ports.Single(p => p.Name == name).ContainerPort;
        foreach (var set in manifests.MocoSets)
        {
            Assert.True(Matches(policy.Spec.PodSelector, set.Spec.Template.Metadata.Labels), $"{kustomization}: the policy does not select {set.Metadata.Name}");
            var ports = Manifests.ContainerOf(set).Ports.Select(p => p.ContainerPort).ToHashSet();
            foreach (var rule in policy.Spec.Ingress)
            {
                // every port a rule opens is one the pod serves, and every rule names its sources
                Assert.All(rule.Ports, p => Assert.Contains(int.Parse(p.Port.Value, System.Globalization.CultureInfo.InvariantCulture), ports));
                Assert.NotEmpty(rule.FromProperty);
            }
        }

        var cluster = Assert.Single(policy.Spec.Ingress, r => r.Ports.Any(p => p.Port.Value == Port("remoting").ToString(System.Globalization.CultureInfo.InvariantCulture)));
        Assert.Equal(new[] { Port("remoting"), Port("data-plane") }.Order(), cluster.Ports.Select(p => int.Parse(p.Port.Value, System.Globalization.CultureInfo.InvariantCulture)).Order());
        var peers = Assert.Single(cluster.FromProperty);
        Assert.Null(peers.NamespaceSelector);
        Assert.Null(peers.IpBlock);
        foreach (var set in manifests.MocoSets)
        {
            Assert.True(Matches(peers.PodSelector, set.Spec.Template.Metadata.Labels));
        }

        var metrics = Assert.Single(policy.Spec.Ingress, r => r.Ports.Any(p => p.Port.Value == Port("metrics").ToString(System.Globalization.CultureInfo.InvariantCulture)));
        Assert.Single(metrics.Ports);
        var monitoring = Assert.Single(metrics.FromProperty);
        Assert.Equal("monitoring", monitoring.NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"]);
        Assert.Null(monitoring.PodSelector);
    }

    [KubectlTheory]
    [InlineData("examples/cpu-postgres")]
    [InlineData("examples/gpu-postgres-monitoring")]
    public void The_postgres_pod_gets_no_service_account_token(string kustomization)
    {
        var postgres = Manifests.Render(kustomization).Named<V1StatefulSet>("moco-postgres");
        Assert.True(postgres.Spec.Template.Spec.AutomountServiceAccountToken == false, $"{kustomization}: PostgreSQL's pod mounts a service-account token");
    }

    /// <summary>
    /// What is wrong with the MOCO_* variables of an environment, as the host sees them: each must set a key of a
    /// section (<see cref="Presets.WithEnvironment"/> decides, with the host's own prefixes). One the host refuses
    /// stops it at start-up; one it ignores looks like a setting and sets nothing. Variables only the kubelet uses
    /// (POD_NAME, RUN_DIR_NAME, POSTGRES_PASSWORD) must not start with MOCO_.
    /// </summary>
    internal static List<string> UnreadMocoVariables(System.Collections.IDictionary env)
    {
        var problems = new List<string>();
        var empty = ConfigurationFactory.Empty;
        foreach (System.Collections.DictionaryEntry variable in env)
        {
            var name = (string)variable.Key;
            if (!name.StartsWith("MOCO_", StringComparison.Ordinal))
            {
                continue;
            }
            try
            {
                var one = new System.Collections.Hashtable { [name] = variable.Value };
                if (ReferenceEquals(Presets.WithEnvironment(empty, one), empty))
                {
                    problems.Add($"{name} is read by no section of the host (its prefixes: MOCO_<SECTION>_ for {string.Join(", ", Presets.Sections)}); rename it without MOCO_");
                }
            }
            catch (ConfigurationError e)
            {
                problems.Add($"{name}: the host refuses it: {e.Message}");
            }
        }
        return problems;
    }

    internal static bool Matches(V1LabelSelector selector, IDictionary<string, string> labels)
    {
        foreach (var expression in selector.MatchExpressions ?? [])
        {
            bool has = labels.TryGetValue(expression.Key, out var value);
            bool ok = expression.OperatorProperty switch
            {
                "In" => has && expression.Values.Contains(value!),
                "NotIn" => !has || !expression.Values.Contains(value!),
                "Exists" => has,
                "DoesNotExist" => !has,
                _ => throw new Xunit.Sdk.XunitException($"unknown selector operator {expression.OperatorProperty}"),
            };
            if (!ok)
            {
                return false;
            }
        }
        return (selector.MatchLabels is null or { Count: 0 } && selector.MatchExpressions is { Count: > 0 }) || MatchLabels(selector.MatchLabels, labels);
    }

    internal static bool MatchLabels(IDictionary<string, string>? required, IDictionary<string, string>? labels) =>
        required is { Count: > 0 } && labels is not null && required.All(kv => labels.TryGetValue(kv.Key, out var v) && v == kv.Value);

    private static bool IsUnder(string path, string folder) =>
        Path.GetFullPath(path).TrimEnd('/').StartsWith(folder.TrimEnd('/') + "/", StringComparison.Ordinal) || Path.GetFullPath(path).TrimEnd('/') == folder.TrimEnd('/');

    [GeneratedRegex(@"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")]
    private static partial Regex VariableReference();
}
