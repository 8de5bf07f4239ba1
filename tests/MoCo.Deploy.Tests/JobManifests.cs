using Akka.Configuration;
using k8s;
using k8s.Models;
using MoCo.Host.Configuration;

namespace MoCo.Deploy.Tests;

/// <summary>
/// One run of the job shape (k8s/job) as <c>kubectl kustomize</c> renders it, parsed strictly (<see cref="Manifests.Parse"/>):
/// the trainer Job, the worker Job and the objects they refer to, all carrying the run's name suffix.
/// </summary>
public sealed class JobManifests
{
    /// <summary>
    /// The runs of the job shape these tests render: the repository's run kustomizations (folders below k8s/) and
    /// "run:NAME", a run named NAME made as k8s/README.md tells a user to (<see cref="RenderRun"/>).
    /// </summary>
    public static readonly TheoryData<string> Runs = new()
    {
        "examples/job-quickstart",
        "examples/job-kueue",
        "run:cifar-2",
    };

    /// <summary>The run names of the repository's run kustomizations (their nameSuffix, less the dash).</summary>
    private static readonly Dictionary<string, string> RunNames = new()
    {
        ["examples/job-quickstart"] = "quickstart-1",
        ["examples/job-kueue"] = "kueue-1",
    };

    /// <summary>One of <see cref="Runs"/>, rendered.</summary>
    public static JobManifests Get(string run) =>
        run.StartsWith("run:", StringComparison.Ordinal) ? RenderRun(run["run:".Length..]) : Render(run, RunNames[run]);

    private static readonly Dictionary<string, JobManifests> Cache = new();

    private JobManifests(string name, string runName, IReadOnlyList<IKubernetesObject<V1ObjectMeta>> objects)
    {
        Name = name;
        RunName = runName;
        Objects = objects;
    }

    /// <summary>What was rendered (a folder below k8s/, or "a run named X").</summary>
    public string Name { get; }

    /// <summary>The run's name: the suffix of every object's name.</summary>
    public string RunName { get; }

    /// <summary>Every rendered object, in kubectl's order.</summary>
    public IReadOnlyList<IKubernetesObject<V1ObjectMeta>> Objects { get; }

    /// <summary>Renders k8s/<paramref name="kustomization"/>, a run kustomization whose nameSuffix is -<paramref name="runName"/>.</summary>
    public static JobManifests Render(string kustomization, string runName)
    {
        lock (Cache)
        {
            if (!Cache.TryGetValue(kustomization, out var manifests))
            {
                var yaml = Kubectl.Kustomize(Repository.PathOf("k8s", kustomization));
                manifests = new JobManifests(kustomization, runName, Manifests.Parse(yaml, kustomization));
                Cache[kustomization] = manifests;
            }
            return manifests;
        }
    }

    /// <summary>
    /// Renders a run named <paramref name="runName"/> as a user makes one: a kustomization of its own, outside k8s/, with
    /// the namespace, the nameSuffix and k8s/job as its resource (k8s/README.md, "Runs that finish").
    /// </summary>
    public static JobManifests RenderRun(string runName)
    {
        lock (Cache)
        {
            var key = "run:" + runName;
            if (!Cache.TryGetValue(key, out var manifests))
            {
                var folder = Directory.CreateTempSubdirectory("moco-job-run-");
                try
                {
                    // kustomize refuses absolute paths in resources; a relative one may leave the folder
                    var job = Path.GetRelativePath(folder.FullName, Repository.PathOf("k8s", "job"));
                    File.WriteAllText(Path.Combine(folder.FullName, "kustomization.yaml"), $"""
                        apiVersion: kustomize.config.k8s.io/v1beta1
                        kind: Kustomization
                        namespace: moco
                        nameSuffix: -{runName}
                        resources:
                          - {job}
                        """);
                    var yaml = Kubectl.Kustomize(folder.FullName);
                    manifests = new JobManifests($"a run named {runName}", runName, Manifests.Parse(yaml, $"a run named {runName}"));
                }
                finally
                {
                    folder.Delete(recursive: true);
                }
                Cache[key] = manifests;
            }
            return manifests;
        }
    }

    /// <summary>Objects of one model type.</summary>
    public IEnumerable<T> All<T>() => Objects.OfType<T>();

    /// <summary>The one object of type <typeparamref name="T"/> whose name before the run's suffix is <paramref name="baseName"/>.</summary>
    public T Named<T>(string baseName) where T : IKubernetesObject<V1ObjectMeta>
    {
        var name = $"{baseName}-{RunName}";
        var found = All<T>().Where(o => o.Metadata.Name == name || Manifests.IsGeneratedFrom(o.Metadata.Name, name)).ToList();
        return found.Count == 1 ? found[0]
            : throw new Xunit.Sdk.XunitException($"{Name}: expected one {typeof(T).Name} named {name}, found {found.Count}");
    }

    /// <summary>The trainer Job (<c>moco train</c>).</summary>
    public V1Job Trainer => Named<V1Job>("moco-trainer");

    /// <summary>The worker Job (<c>moco node</c>).</summary>
    public V1Job Workers => Named<V1Job>("moco-workers");

    /// <summary>Both Jobs.</summary>
    public IReadOnlyList<V1Job> Jobs => [Trainer, Workers];

    /// <summary>The container named moco of <paramref name="job"/>'s pods.</summary>
    public static V1Container ContainerOf(V1Job job) => job.Spec.Template.Spec.Containers.Single(c => c.Name == "moco");

    /// <summary>
    /// The labels a pod of <paramref name="job"/> carries: its template's and the ones the Job controller adds
    /// (<c>batch.kubernetes.io/job-name</c> and the legacy <c>job-name</c>, the Job's name).
    /// </summary>
    public static IDictionary<string, string> PodLabels(V1Job job) =>
        new Dictionary<string, string>(job.Spec.Template.Metadata.Labels)
        {
            ["batch.kubernetes.io/job-name"] = job.Metadata.Name,
            ["job-name"] = job.Metadata.Name,
        };

    /// <summary>The value that follows <paramref name="option"/> in <paramref name="job"/>'s moco arguments.</summary>
    public string Argument(V1Job job, string option)
    {
        var args = ContainerOf(job).Args ?? [];
        int i = args.IndexOf(option);
        Assert.True(i >= 0 && i + 1 < args.Count, $"{Name}: {job.Metadata.Name}'s args ({string.Join(' ', args)}) give no {option}");
        return args[i + 1];
    }

    /// <summary><paramref name="job"/>'s argument after <paramref name="option"/>, expanded as the kubelet does from its environment.</summary>
    public string ExpandedArgument(V1Job job, string option) => Manifests.Expand(Argument(job, option), EnvironmentOf(job));

    /// <summary>
    /// The environment of <paramref name="job"/>'s moco container as the kubelet builds it, in order, <c>$(NAME)</c>
    /// expanded from the variables before it, the pod IP and Secrets replaced by stand-ins.
    /// </summary>
    public System.Collections.Specialized.OrderedDictionary EnvironmentOf(V1Job job)
    {
        var env = new System.Collections.Specialized.OrderedDictionary();
        foreach (var variable in ContainerOf(job).Env ?? [])
        {
            env[variable.Name] = variable.ValueFrom switch
            {
                null => Manifests.Expand(variable.Value ?? "", env),
                { FieldRef.FieldPath: "status.podIP" } => Manifests.PodIp,
                { SecretKeyRef: not null } => Manifests.SecretValue,
                _ => throw new Xunit.Sdk.XunitException($"{Name}: {job.Metadata.Name}'s {variable.Name} comes from a source these tests do not model"),
            };
        }
        return env;
    }

    /// <summary>The ConfigMap mounted at the folder of <paramref name="job"/>'s <c>--config</c> file.</summary>
    public V1ConfigMap ConfigMapOf(V1Job job)
    {
        var folder = Path.GetDirectoryName(Argument(job, "--config"))!;
        var mount = (ContainerOf(job).VolumeMounts ?? []).SingleOrDefault(m => m.MountPath.TrimEnd('/') == folder)
            ?? throw new Xunit.Sdk.XunitException($"{Name}: {job.Metadata.Name} mounts no volume at {folder}");
        var volume = job.Spec.Template.Spec.Volumes.Single(v => v.Name == mount.Name);
        Assert.True(volume.ConfigMap is not null, $"{Name}: the volume {mount.Name} at {folder} is not a ConfigMap");
        return All<V1ConfigMap>().SingleOrDefault(c => c.Metadata.Name == volume.ConfigMap!.Name)
            ?? throw new Xunit.Sdk.XunitException($"{Name}: the ConfigMap {volume.ConfigMap!.Name} is not in the render");
    }

    /// <summary>The configuration file <paramref name="job"/>'s moco reads, from the ConfigMap, parsed by the host's own reader.</summary>
    public Config FileConfigOf(V1Job job)
    {
        var configMap = ConfigMapOf(job);
        var folder = Directory.CreateTempSubdirectory("moco-configmap-");
        try
        {
            foreach (var (key, text) in configMap.Data)
            {
                File.WriteAllText(Path.Combine(folder.FullName, key), text);
            }
            var file = Path.Combine(folder.FullName, Path.GetFileName(Argument(job, "--config")));
            Assert.True(File.Exists(file), $"{Name}: --config names no key of the ConfigMap");
            return SettingsReader.ParseFile(file);
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }

    /// <summary>What the host of <paramref name="job"/>'s pod reads: its file, its environment, then <c>--join</c> as <c>moco node</c> applies it.</summary>
    public Config HostConfigOf(V1Job job)
    {
        var config = Presets.WithEnvironment(FileConfigOf(job), EnvironmentOf(job));
        if ((ContainerOf(job).Args ?? []).Contains("--join"))
        {
            config = Presets.WithOverrides(config, "moco.cluster", new Dictionary<string, string> { ["seed-nodes"] = ExpandedArgument(job, "--join") });
        }
        return config;
    }
}
