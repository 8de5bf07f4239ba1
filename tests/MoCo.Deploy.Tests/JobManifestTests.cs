using k8s.Models;
using MoCo.Host;
using MoCo.Host.Configuration;
using MoCo.Host.Metrics;

namespace MoCo.Deploy.Tests;

/// <summary>
/// The job shape (k8s/job): runs rendered by <c>kubectl kustomize</c> under their own names and parsed strictly
/// (<see cref="JobManifests"/>), then cross-checked as <see cref="ManifestTests"/> checks the StatefulSets, and for what
/// only Jobs have: each run's names, selectors and join address are its own, and the Jobs' podFailurePolicy reads the
/// host's exit codes (<see cref="ExitCodes"/>) as the host means them.
/// </summary>
public sealed class JobManifestTests
{
    [KubectlTheory]
    [MemberData(nameof(JobManifests.Runs), MemberType = typeof(JobManifests))]
    public void A_run_is_two_jobs_and_their_own_objects_and_nothing_the_namespace_shares(string run)
    {
        var manifests = JobManifests.Get(run);
        Assert.Equal(
            ["ConfigMap", "Job", "Job", "NetworkPolicy", "PersistentVolumeClaim", "Service", "ServiceAccount"],
            manifests.Objects.Select(o => o.Kind).Order(StringComparer.Ordinal));
        foreach (var o in manifests.Objects)
        {
            // every object is the run's own: its name carries the run's name, so deleting the run deletes only what it made
            Assert.True(o.Metadata.Name.EndsWith("-" + manifests.RunName, StringComparison.Ordinal) || Manifests.IsGeneratedFrom(o.Metadata.Name, $"moco-hocon-{manifests.RunName}"),
                $"{manifests.Name}: {o.Kind} {o.Metadata.Name} does not carry the run's name {manifests.RunName}");
            Assert.True(o.Metadata.NamespaceProperty == "moco", $"{manifests.Name}: {o.Kind} {o.Metadata.Name} is in namespace '{o.Metadata.NamespaceProperty}', not moco");
        }
        // no Namespace (several runs live in one: deleting a run must not delete it) and no Secret (shared by the runs)
        Assert.Empty(manifests.All<V1Namespace>());
        Assert.Empty(manifests.All<V1Secret>());
        Assert.Empty(manifests.All<V1StatefulSet>());
    }

    [KubectlFact]
    public void Two_runs_in_one_namespace_share_no_name_and_select_only_their_own_pods()
    {
        var runs = new[] { JobManifests.Get("examples/job-quickstart"), JobManifests.Get("run:cifar-2") };
        Assert.NotEqual(runs[0].RunName, runs[1].RunName);
        var names = runs.SelectMany(r => r.Objects).Select(o => $"{o.Kind}/{o.Metadata.Name}").ToList();
        var collisions = names.GroupBy(n => n).Where(g => g.Count() > 1).Select(g => g.Key).ToList();
        Assert.True(collisions.Count == 0, "objects of both runs with one name: " + string.Join(", ", collisions));
        // each run's workers join another address (Workers_join_the_trainer_of_their_own_run_... checks it is their trainer's)
        Assert.NotEqual(runs[0].ExpandedArgument(runs[0].Workers, "--join"), runs[1].ExpandedArgument(runs[1].Workers, "--join"));

        // the pods of both runs, with the labels the Job controller adds
        var pods = runs.SelectMany(r => r.Jobs).ToDictionary(j => j.Metadata.Name, JobManifests.PodLabels);
        foreach (var manifests in runs)
        {
            // the trainer's Service selects this run's trainer and nothing else
            var service = Assert.Single(manifests.All<V1Service>());
            var selected = pods.Where(p => ManifestTests.MatchLabels(service.Spec.Selector, p.Value)).Select(p => p.Key).ToList();
            Assert.Equal([manifests.Trainer.Metadata.Name], selected);

            // the network policy applies to this run's two Jobs, and lets in remoting and the data plane from them only
            var policy = Assert.Single(manifests.All<V1NetworkPolicy>());
            var own = manifests.Jobs.Select(j => j.Metadata.Name).Order().ToList();
            Assert.Equal(own, pods.Where(p => ManifestTests.Matches(policy.Spec.PodSelector, p.Value)).Select(p => p.Key).Order());
            var peers = Assert.Single(policy.Spec.Ingress, r => r.FromProperty.Any(f => f.PodSelector is not null));
            Assert.Equal(own, pods.Where(p => ManifestTests.Matches(Assert.Single(peers.FromProperty).PodSelector, p.Value)).Select(p => p.Key).Order());
        }
    }

    [KubectlTheory]
    [MemberData(nameof(JobManifests.Runs), MemberType = typeof(JobManifests))]
    public void Workers_join_the_trainer_of_their_own_run_at_the_address_it_advertises(string run)
    {
        var manifests = JobManifests.Get(run);
        var trainer = manifests.Trainer;
        var pod = trainer.Spec.Template.Spec;
        // the trainer pod's DNS name is <hostname>.<subdomain>, given by the headless Service named subdomain, which
        // must be this run's Service, selecting this run's trainer (Two_runs_...)
        var service = manifests.Named<V1Service>("moco-trainer");
        Assert.Equal(service.Metadata.Name, pod.Subdomain);
        Assert.False(string.IsNullOrEmpty(pod.Hostname), $"{manifests.Name}: the trainer's pod has no hostname: Job pods have random names, so it has no stable DNS name");
        Assert.True(service.Spec.ClusterIP == "None" && service.Spec.PublishNotReadyAddresses == true,
            $"{manifests.Name}: Service {service.Metadata.Name} must be headless and publish the pod before it is ready");
        Assert.True(ManifestTests.MatchLabels(service.Spec.Selector, JobManifests.PodLabels(trainer)), $"{manifests.Name}: Service {service.Metadata.Name} does not select the trainer's pod");

        var config = manifests.FileConfigOf(trainer);
        var port = config.GetInt("moco.cluster.port");
        var host = $"{pod.Hostname}.{pod.Subdomain}";
        Assert.Equal($"{host}:{port}", manifests.ExpandedArgument(manifests.Workers, "--join"));
        Assert.Contains(service.Spec.Ports, p => p.Port == port && p.Name == "remoting");

        // the trainer advertises exactly that name (Akka.Remote drops messages addressed to another one), as the host reads it
        var trainerCluster = SettingsReader.Read<ClusterSettings>(manifests.HostConfigOf(trainer), "moco.cluster", "trainer").Validate();
        Assert.Equal(host, trainerCluster.PublicHostnameOrHostname());
        Assert.Empty(trainerCluster.SeedAddresses());
        var workerCluster = SettingsReader.Read<ClusterSettings>(manifests.HostConfigOf(manifests.Workers), "moco.cluster", "workers").Validate();
        Assert.True(trainerCluster.Tls && workerCluster.Tls, $"{manifests.Name}: remoting without the cluster certificate");
        Assert.Equal([$"akka.ssl.tcp://{ClusterSettings.SystemName}@{host}:{trainerCluster.Port}"], workerCluster.SeedAddresses());
        Assert.Equal(Manifests.PodIp, workerCluster.PublicHostnameOrHostname());
    }

    [KubectlTheory]
    [MemberData(nameof(JobManifests.Runs), MemberType = typeof(JobManifests))]
    public void The_pods_run_to_the_end_of_the_run_and_exit(string run)
    {
        var manifests = JobManifests.Get(run);
        var trainer = JobManifests.ContainerOf(manifests.Trainer);
        var workers = JobManifests.ContainerOf(manifests.Workers);
        Assert.Equal("train", trainer.Args[0]);
        Assert.Contains("--continue", trainer.Args); // a new pod after a failure resumes the run
        Assert.Equal("node", workers.Args[0]);
        Assert.Contains("--until-complete", workers.Args); // exit when the run completes, join again while it has not
        foreach (var (job, container) in new[] { (manifests.Trainer, trainer), (manifests.Workers, workers) })
        {
            Assert.DoesNotContain("--stay", container.Args); // --stay never exits: the Job would never complete
            Assert.Null(container.Command); // the image's entrypoint is moco
            Assert.Equal("Never", job.Spec.Template.Spec.RestartPolicy); // podFailurePolicy needs it; a new pod resumes
            // a completed run found on start exits 0 instead of waiting for SIGTERM
            var host = SettingsReader.Read<HostSettings>(manifests.HostConfigOf(job), "moco.host", job.Metadata.Name);
            Assert.False(host.IdleWhenComplete, $"{manifests.Name}: {job.Metadata.Name} reads idle-when-complete = true: a restarted trainer of a completed run would never end its Job");
            Assert.True(job.Spec.TtlSecondsAfterFinished > 0, $"{manifests.Name}: {job.Metadata.Name} is never cleaned up after it finished");
            // never two pods of one Job at once for one slot: the next trainer takes the claim and the DNS name only
            // once the last one ended (and wrote its checkpoint)
            Assert.Equal("Failed", job.Spec.PodReplacementPolicy);
            Assert.NotEqual(true, job.Spec.Suspend);
        }

        // the trainer: one pod that completes once; the workers: a work queue (no completions), parallelism the worker count
        Assert.Equal((1, 1), (manifests.Trainer.Spec.Completions, manifests.Trainer.Spec.Parallelism));
        Assert.Null(manifests.Workers.Spec.Completions);
        Assert.NotEqual("Indexed", manifests.Workers.Spec.CompletionMode); // any pod's success ends the work queue
        var minWorkers = manifests.FileConfigOf(manifests.Trainer).GetInt("moco.cluster.min-workers");
        Assert.True(1 + manifests.Workers.Spec.Parallelism >= minWorkers,
            $"{manifests.Name}: {manifests.Workers.Spec.Parallelism} worker pods and the trainer's own device cannot meet min-workers {minWorkers}");
        Assert.DoesNotContain("--devices", trainer.Args);
        Assert.DoesNotContain("--devices", workers.Args);
    }

    [KubectlTheory]
    [MemberData(nameof(JobManifests.Runs), MemberType = typeof(JobManifests))]
    public void Pod_failure_policies_read_the_hosts_exit_codes(string run)
    {
        var manifests = JobManifests.Get(run);
        var trainer = Rules(manifests.Trainer);
        var workers = Rules(manifests.Workers);
        // permanent: the same configuration or machine fails the same way again
        Assert.Equal([ExitCodes.ConfigurationError, ExitCodes.NumericsCheckFailed], trainer.FailJob);
        Assert.Equal([ExitCodes.ConfigurationError], workers.FailJob);
        // the trainer's interrupt (SIGTERM, with a checkpoint) and a worker's leave on SIGTERM are neither a failure
        // nor a success: the next pod resumes, or the lower parallelism is met
        Assert.Equal([ExitCodes.Interrupted], trainer.Ignore);
        Assert.Equal([ExitCodes.LeftBeforeCompletion], workers.Ignore);
        foreach (var (job, rules) in new[] { (manifests.Trainer, trainer), (manifests.Workers, workers) })
        {
            var where = $"{manifests.Name}: {job.Metadata.Name}";
            // evictions, preemption and drains are not the run's fault
            Assert.True(rules.IgnoresDisruption, $"{where} counts a DisruptionTarget as a failure");
            // success is no failure, and a failed run or a crash is counted and retried (--continue) up to backoffLimit
            Assert.DoesNotContain(ExitCodes.Success, rules.FailJob.Concat(rules.Ignore));
            Assert.DoesNotContain(ExitCodes.RunFailed, rules.FailJob.Concat(rules.Ignore));
            Assert.True(job.Spec.BackoffLimit > 0, $"{where}: backoffLimit {job.Spec.BackoffLimit} retries nothing");
        }
    }

    [Fact]
    public void Exit_codes_that_a_job_reads_differently_are_different()
    {
        // a podFailurePolicy tells the codes apart by value: two meanings on one code would share one action
        int[] codes = [ExitCodes.Success, ExitCodes.RunFailed, ExitCodes.ConfigurationError, ExitCodes.NumericsCheckFailed, ExitCodes.Interrupted, ExitCodes.LeftBeforeCompletion];
        Assert.Equal(codes.Length, codes.Distinct().Count());
        Assert.All(codes, c => Assert.InRange(c, 0, 255)); // what a container's exit code can be
    }

    [KubectlTheory]
    [MemberData(nameof(JobManifests.Runs), MemberType = typeof(JobManifests))]
    public void References_ports_probes_and_mounts_agree_with_the_host(string run)
    {
        var manifests = JobManifests.Get(run);
        var config = manifests.FileConfigOf(manifests.Trainer);
        var host = SettingsReader.Read<HostSettings>(config, "moco.host", "trainer");
        var expectedPorts = new Dictionary<string, int>
        {
            ["remoting"] = config.GetInt("moco.cluster.port"),
            ["data-plane"] = config.GetInt("moco.cluster.data-plane-port"),
            ["metrics"] = SettingsReader.Read<MetricsSettings>(config, "moco.metrics", "trainer").Port,
        };
        var claim = Assert.Single(manifests.All<V1PersistentVolumeClaim>());
        Assert.Equal(["ReadWriteOnce"], claim.Spec.AccessModes);
        foreach (var job in manifests.Jobs)
        {
            var where = $"{manifests.Name}: {job.Metadata.Name}";
            var pod = job.Spec.Template.Spec;
            var container = JobManifests.ContainerOf(job);
            // the same configuration file in both, from the ConfigMap generated from hocon/, read without an unknown key
            Assert.Equal("/etc/moco/hocon/kubernetes-job.conf", manifests.Argument(job, "--config"));
            Assert.True(Manifests.IsGeneratedFrom(manifests.ConfigMapOf(job).Metadata.Name, $"moco-hocon-{manifests.RunName}"), $"{where} reads another ConfigMap");
            var hostConfig = manifests.HostConfigOf(job);
            SettingsReader.CheckSections(hostConfig, "moco", Presets.Sections, where);
            SettingsReader.Read<MoCo.Model.Training.RunConfig>(hostConfig, "moco.run", where).Validate();
            SettingsReader.Read<JournalSettings>(hostConfig, "moco.journal", where).Validate();
            var problems = ManifestTests.UnreadMocoVariables(manifests.EnvironmentOf(job));
            Assert.True(problems.Count == 0, $"{where}: {string.Join("; ", problems)}");

            // the run's own ServiceAccount, no token; the namespace's Secrets, under their own names (not the run's)
            Assert.Equal(Assert.Single(manifests.All<V1ServiceAccount>()).Metadata.Name, pod.ServiceAccountName);
            Assert.False(pod.AutomountServiceAccountToken ?? true, $"{where} mounts a service-account token");
            Assert.Equal("moco-cluster-tls", Assert.Single(pod.Volumes, v => v.Secret is not null).Secret.SecretName);
            Assert.Equal(["moco-secrets"], (container.Env ?? []).Where(e => e.ValueFrom?.SecretKeyRef is not null).Select(e => e.ValueFrom.SecretKeyRef.Name).Distinct());
            var certificate = Assert.Single(container.Env ?? [], e => e.Name == "MOCO_CLUSTER_CERTIFICATE").Value;
            var tlsMount = Assert.Single(container.VolumeMounts, m => m.Name == Assert.Single(pod.Volumes, v => v.Secret is not null).Name);
            Assert.StartsWith(tlsMount.MountPath.TrimEnd('/') + "/", certificate, StringComparison.Ordinal);
            foreach (var mount in container.VolumeMounts)
            {
                Assert.Contains(pod.Volumes, v => v.Name == mount.Name);
            }

            // ports: exactly the configuration's, named as the Service and the probes name them
            Assert.Equal(expectedPorts.OrderBy(p => p.Key), container.Ports.ToDictionary(p => p.Name, p => p.ContainerPort).OrderBy(p => p.Key));
            Assert.Equal((MetricsEndpoint.AlivePath, "metrics"), (container.LivenessProbe.HttpGet.Path, container.LivenessProbe.HttpGet.Port.Value));
            Assert.Equal((MetricsEndpoint.AlivePath, "metrics"), (container.StartupProbe.HttpGet.Path, container.StartupProbe.HttpGet.Port.Value));
            Assert.Equal((MetricsEndpoint.ReadyPath, "metrics"), (container.ReadinessProbe.HttpGet.Path, container.ReadinessProbe.HttpGet.Port.Value));

            // the image: an explicit tag, one for both Jobs (one protocol, one checkpoint format)
            Assert.Matches(":[A-Za-z0-9._-]+$", container.Image);
            Assert.Equal("IfNotPresent", container.ImagePullPolicy);
            Assert.Equal(JobManifests.ContainerOf(manifests.Trainer).Image, container.Image);

            // runs-root is writable; on the trainer it is the run's claim, on a worker scratch that ends with the pod
            var runsMount = Assert.Single(container.VolumeMounts, m => m.MountPath.TrimEnd('/') == host.RunsRoot.TrimEnd('/'));
            Assert.NotEqual(true, runsMount.ReadOnlyProperty);
            var runsVolume = Assert.Single(pod.Volumes, v => v.Name == runsMount.Name);
            Assert.Equal(job == manifests.Trainer ? claim.Metadata.Name : null, runsVolume.PersistentVolumeClaim?.ClaimName);
            Assert.Equal(job != manifests.Trainer, runsVolume.EmptyDir is not null);
        }

        // --run-dir is one folder directly below runs-root, on the claim
        var runDir = manifests.ExpandedArgument(manifests.Trainer, "--run-dir");
        Assert.Equal(host.RunsRoot.TrimEnd('/'), Path.GetDirectoryName(runDir));
        // the Service targets ports the trainer names
        foreach (var port in manifests.Named<V1Service>("moco-trainer").Spec.Ports)
        {
            Assert.Equal(expectedPorts[port.Name], port.Port);
            Assert.Equal(port.Name, port.TargetPort.Value);
        }
    }

    [KubectlFact]
    public void Grace_periods_are_those_of_the_stateful_sets()
    {
        // ManifestTests checks that the StatefulSets' periods outlast the trainer's chunk and coordinated shutdown; the
        // Jobs' pods stop the same way, so they need the same
        var sets = Manifests.Render("overlays/cpu");
        var jobs = JobManifests.Get("examples/job-quickstart");
        Assert.Equal(sets.Trainer.Spec.Template.Spec.TerminationGracePeriodSeconds, jobs.Trainer.Spec.Template.Spec.TerminationGracePeriodSeconds);
        Assert.Equal(sets.Workers.Spec.Template.Spec.TerminationGracePeriodSeconds, jobs.Workers.Spec.Template.Spec.TerminationGracePeriodSeconds);
        Assert.Equal(Manifests.ContainerOf(sets.Trainer).Image, JobManifests.ContainerOf(jobs.Trainer).Image);
    }

    [KubectlFact]
    public void Kueue_admits_both_jobs_from_one_queue_and_the_workers_down_to_the_run_minimum()
    {
        var manifests = JobManifests.Get("examples/job-kueue");
        foreach (var job in manifests.Jobs)
        {
            Assert.Equal("moco", job.Metadata.Labels["kueue.x-k8s.io/queue-name"]);
        }
        // partial admission: at least job-min-parallelism worker pods, which with the trainer's own device are
        // min-workers, and (as Kueue validates) fewer than parallelism
        var minWorkers = manifests.FileConfigOf(manifests.Trainer).GetInt("moco.cluster.min-workers");
        var minParallelism = int.Parse(manifests.Workers.Metadata.Annotations["kueue.x-k8s.io/job-min-parallelism"], System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal(minWorkers, 1 + minParallelism);
        Assert.InRange(minParallelism, 0, manifests.Workers.Spec.Parallelism!.Value - 1);
        Assert.DoesNotContain("kueue.x-k8s.io/job-min-parallelism", manifests.Trainer.Metadata.Annotations?.Keys ?? []);
    }

    /// <summary>The exit codes of <paramref name="job"/>'s FailJob and Ignore rules for the moco container, and whether DisruptionTarget is ignored.</summary>
    private static (int[] FailJob, int[] Ignore, bool IgnoresDisruption) Rules(V1Job job)
    {
        var rules = job.Spec.PodFailurePolicy?.Rules ?? throw new Xunit.Sdk.XunitException($"{job.Metadata.Name} has no podFailurePolicy");
        foreach (var rule in rules.Where(r => r.OnExitCodes is not null))
        {
            Assert.Equal("moco", rule.OnExitCodes.ContainerName);
            Assert.Equal("In", rule.OnExitCodes.OperatorProperty);
        }

        int[] Codes(string action) => rules.Where(r => r.Action == action && r.OnExitCodes is not null).SelectMany(r => r.OnExitCodes.Values).Order().ToArray();
        Assert.DoesNotContain(rules, r => r.Action is not ("FailJob" or "Ignore"));
        bool ignores = rules.Any(r => r.Action == "Ignore" && (r.OnPodConditions ?? []).Any(c => c.Type == "DisruptionTarget"));
        return (Codes("FailJob"), Codes("Ignore"), ignores);
    }
}
