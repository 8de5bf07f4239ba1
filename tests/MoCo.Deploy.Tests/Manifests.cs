using System.Reflection;
using System.Text.Json.Serialization;
using Akka.Configuration;
using k8s;
using k8s.Models;
using MoCo.Host.Configuration;

namespace MoCo.Deploy.Tests;

/// <summary>
/// The objects of one rendered kustomization, each parsed into KubernetesClient's model type for its apiVersion and
/// kind, strictly: an unknown field anywhere, or an unknown apiVersion/kind, fails the parse.
/// </summary>
public sealed class Manifests
{
    /// <summary>The kustomizations a deployment may use, relative to k8s/.</summary>
    public static readonly TheoryData<string> Kustomizations = new()
    {
        "overlays/cpu",
        "overlays/gpu",
        "examples/cpu-postgres",
        "examples/gpu-postgres-monitoring",
    };

    /// <summary>apiVersion/kind → model type: every type of KubernetesClient that carries [KubernetesEntity], and the PodMonitor CRD.</summary>
    public static readonly IReadOnlyDictionary<string, Type> TypeMap = BuildTypeMap();

    private static readonly Dictionary<string, Manifests> Cache = new();

    private Manifests(string name, IReadOnlyList<IKubernetesObject<V1ObjectMeta>> objects)
    {
        Name = name;
        Objects = objects;
    }

    /// <summary>The kustomization's path below k8s/.</summary>
    public string Name { get; }

    /// <summary>Every rendered object, in kubectl's order.</summary>
    public IReadOnlyList<IKubernetesObject<V1ObjectMeta>> Objects { get; }

    /// <summary>Renders k8s/<paramref name="kustomization"/> with kubectl and parses it (once per test run).</summary>
    public static Manifests Render(string kustomization)
    {
        lock (Cache)
        {
            if (!Cache.TryGetValue(kustomization, out var manifests))
            {
                var yaml = Kubectl.Kustomize(Repository.PathOf("k8s", kustomization));
                manifests = new Manifests(kustomization, Parse(yaml, kustomization));
                Cache[kustomization] = manifests;
            }
            return manifests;
        }
    }

    /// <summary>Parses a multi-document YAML stream strictly; <paramref name="source"/> names it in errors.</summary>
    public static IReadOnlyList<IKubernetesObject<V1ObjectMeta>> Parse(string yaml, string source)
    {
        List<object> objects;
        try
        {
            objects = KubernetesYaml.LoadAllFromString(yaml, TypeMap.ToDictionary(), strict: true);
        }
        catch (Exception e)
        {
            throw new InvalidOperationException($"{source}: not valid Kubernetes objects: {e.Message}", e);
        }
        return objects.Select((o, i) => o as IKubernetesObject<V1ObjectMeta>
            ?? throw new InvalidOperationException($"{source}: document {i} ({o.GetType().Name}) has no object metadata")).ToList();
    }

    /// <summary>Objects of one model type.</summary>
    public IEnumerable<T> All<T>() => Objects.OfType<T>();

    /// <summary>The one object of type <typeparamref name="T"/> named <paramref name="name"/> (before kustomize's hash suffix, for generated ones).</summary>
    public T Named<T>(string name) where T : IKubernetesObject<V1ObjectMeta>
    {
        var found = All<T>().Where(o => o.Metadata.Name == name || IsGeneratedFrom(o.Metadata.Name, name)).ToList();
        return found.Count == 1 ? found[0]
            : throw new Xunit.Sdk.XunitException($"{Name}: expected one {typeof(T).Name} named {name}, found {found.Count}");
    }

    /// <summary>The trainer StatefulSet (the head: <c>moco train</c>).</summary>
    public V1StatefulSet Trainer => Named<V1StatefulSet>("moco-trainer");

    /// <summary>The worker StatefulSet (<c>moco node</c>).</summary>
    public V1StatefulSet Workers => Named<V1StatefulSet>("moco-worker");

    /// <summary>The StatefulSets that run moco: the trainer and the workers.</summary>
    public IReadOnlyList<V1StatefulSet> MocoSets => [Trainer, Workers];

    /// <summary>The trainer pod's container running moco.</summary>
    public V1Container TrainerContainer => ContainerOf(Trainer);

    /// <summary>The worker pods' container running moco.</summary>
    public V1Container WorkerContainer => ContainerOf(Workers);

    /// <summary>The container named moco of <paramref name="set"/>'s pods.</summary>
    public static V1Container ContainerOf(V1StatefulSet set) => set.Spec.Template.Spec.Containers.Single(c => c.Name == "moco");

    /// <summary>The value that follows <paramref name="option"/> in <paramref name="set"/>'s moco arguments.</summary>
    public string Argument(V1StatefulSet set, string option)
    {
        var args = ContainerOf(set).Args ?? [];
        int i = args.IndexOf(option);
        Assert.True(i >= 0 && i + 1 < args.Count, $"{Name}: {set.Metadata.Name}'s args ({string.Join(' ', args)}) give no {option}");
        return args[i + 1];
    }

    /// <summary>The path <c>--config</c> gives to moco in the trainer's arguments (a test checks the workers give the same).</summary>
    public string ConfigPath => ConfigPathOf(Trainer);

    /// <summary>The path <c>--config</c> gives to moco in <paramref name="set"/>'s arguments.</summary>
    public string ConfigPathOf(V1StatefulSet set) => Argument(set, "--config");

    /// <summary>The ConfigMap mounted at the folder of the trainer's <see cref="ConfigPath"/>.</summary>
    public V1ConfigMap ConfigMapOfConfigPath => ConfigMapOf(Trainer);

    /// <summary>The ConfigMap mounted at the folder of <paramref name="set"/>'s <c>--config</c> file.</summary>
    public V1ConfigMap ConfigMapOf(V1StatefulSet set)
    {
        var folder = Path.GetDirectoryName(ConfigPathOf(set))!;
        var mount = (ContainerOf(set).VolumeMounts ?? []).SingleOrDefault(m => m.MountPath.TrimEnd('/') == folder)
            ?? throw new Xunit.Sdk.XunitException($"{Name}: {set.Metadata.Name} mounts no volume at {folder}, the folder of --config {ConfigPathOf(set)}");
        var volume = set.Spec.Template.Spec.Volumes.Single(v => v.Name == mount.Name);
        Assert.True(volume.ConfigMap is not null, $"{Name}: the volume {mount.Name} at {folder} is not a ConfigMap");
        return All<V1ConfigMap>().SingleOrDefault(c => c.Metadata.Name == volume.ConfigMap!.Name)
            ?? throw new Xunit.Sdk.XunitException($"{Name}: the ConfigMap {volume.ConfigMap!.Name} of volume {mount.Name} is not in the render");
    }

    /// <summary>The configuration file the trainer reads (see <see cref="FileConfigOf"/>).</summary>
    public Config FileConfig() => FileConfigOf(Trainer);

    /// <summary>
    /// The configuration file <paramref name="set"/>'s moco reads: the ConfigMap's files written to a folder and parsed
    /// by the host's own <see cref="SettingsReader.ParseFile"/> (which resolves their <c>include</c> lines).
    /// </summary>
    public Config FileConfigOf(V1StatefulSet set)
    {
        var configMap = ConfigMapOf(set);
        var folder = Directory.CreateTempSubdirectory("moco-configmap-");
        try
        {
            foreach (var (key, text) in configMap.Data)
            {
                File.WriteAllText(Path.Combine(folder.FullName, key), text);
            }
            var file = Path.Combine(folder.FullName, Path.GetFileName(ConfigPathOf(set)));
            Assert.True(File.Exists(file), $"{Name}: --config {ConfigPathOf(set)} names no key of the ConfigMap (keys: {string.Join(", ", configMap.Data.Keys)})");
            return SettingsReader.ParseFile(file);
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }

    /// <summary>
    /// What the host in pod 0 of <paramref name="set"/> reads: its file, then its environment as the kubelet expands it
    /// (<see cref="EnvironmentOf"/>) through the host's own <see cref="Presets.WithEnvironment"/>, then <c>--join</c>
    /// as <c>moco node</c> applies it.
    /// </summary>
    public Config HostConfigOf(V1StatefulSet set)
    {
        var config = Presets.WithEnvironment(FileConfigOf(set), EnvironmentOf(set));
        if ((ContainerOf(set).Args ?? []).Contains("--join"))
        {
            config = Presets.WithOverrides(config, "moco.cluster", new Dictionary<string, string> { ["seed-nodes"] = Argument(set, "--join") });
        }
        return config;
    }

    /// <summary>A stand-in for the pod IP the kubelet gives <c>status.podIP</c>.</summary>
    public const string PodIp = "10.1.2.3";

    /// <summary>A stand-in for a Secret's value (long enough for <c>moco.cluster.secret</c>, and no placeholder).</summary>
    public const string SecretValue = "0123456789abcdef0123456789abcdef";

    /// <summary>
    /// The environment of the moco container of pod 0 of <paramref name="set"/>, as the kubelet builds it: in order,
    /// <c>$(NAME)</c> expanded from the variables before it, field references and Secrets replaced by stand-ins.
    /// </summary>
    public System.Collections.Specialized.OrderedDictionary EnvironmentOf(V1StatefulSet set)
    {
        var env = new System.Collections.Specialized.OrderedDictionary();
        foreach (var variable in ContainerOf(set).Env ?? [])
        {
            env[variable.Name] = variable.ValueFrom switch
            {
                null => Expand(variable.Value ?? "", env),
                { FieldRef.FieldPath: "metadata.name" } => set.Metadata.Name + "-0",
                { FieldRef.FieldPath: "metadata.namespace" } => set.Metadata.NamespaceProperty,
                { FieldRef.FieldPath: "status.podIP" } => PodIp,
                { SecretKeyRef: not null } => SecretValue,
                _ => throw new Xunit.Sdk.XunitException($"{Name}: {set.Metadata.Name}'s {variable.Name} comes from a source these tests do not model"),
            };
        }
        return env;
    }

    /// <summary><paramref name="text"/> with <c>$(NAME)</c> replaced as the kubelet does (an unknown name stays as it is).</summary>
    public static string Expand(string text, System.Collections.IDictionary env) =>
        System.Text.RegularExpressions.Regex.Replace(text, @"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", m => env.Contains(m.Groups[1].Value) ? (string)env[m.Groups[1].Value]! : m.Value);

    /// <summary>Whether <paramref name="actual"/> is <paramref name="name"/> with kustomize's hash suffix (name-hhhhhhhhhh).</summary>
    public static bool IsGeneratedFrom(string actual, string name) =>
        actual.Length == name.Length + 11 && actual.StartsWith(name + "-", StringComparison.Ordinal);

    private static Dictionary<string, Type> BuildTypeMap()
    {
        var map = new Dictionary<string, Type>();
        foreach (var type in typeof(V1Pod).Assembly.GetTypes().Append(typeof(PodMonitor)))
        {
            if (type.GetCustomAttribute<KubernetesEntityAttribute>() is { } entity && !type.Name.EndsWith("List", StringComparison.Ordinal))
            {
                var key = string.IsNullOrEmpty(entity.Group) ? $"{entity.ApiVersion}/{entity.Kind}" : $"{entity.Group}/{entity.ApiVersion}/{entity.Kind}";
                map.TryAdd(key, type);
            }
        }
        return map;
    }
}

/// <summary>
/// The Prometheus Operator's PodMonitor (monitoring.coreos.com/v1), reduced to the fields components/monitoring may
/// use; KubernetesClient has no model for custom resources. Unknown fields are refused like everywhere else.
/// </summary>
[KubernetesEntity(Group = "monitoring.coreos.com", Kind = "PodMonitor", ApiVersion = "v1", PluralName = "podmonitors")]
public sealed class PodMonitor : IKubernetesObject<V1ObjectMeta>
{
    [JsonPropertyName("apiVersion")] public string ApiVersion { get; set; } = "";
    [JsonPropertyName("kind")] public string Kind { get; set; } = "";
    [JsonPropertyName("metadata")] public V1ObjectMeta Metadata { get; set; } = new();
    [JsonPropertyName("spec")] public PodMonitorSpec Spec { get; set; } = new();
}

/// <summary>PodMonitor.spec (subset).</summary>
public sealed class PodMonitorSpec
{
    [JsonPropertyName("selector")] public V1LabelSelector Selector { get; set; } = new();
    [JsonPropertyName("namespaceSelector")] public PodMonitorNamespaceSelector? NamespaceSelector { get; set; }
    [JsonPropertyName("podMetricsEndpoints")] public List<PodMetricsEndpoint> PodMetricsEndpoints { get; set; } = [];
}

/// <summary>PodMonitor.spec.namespaceSelector.</summary>
public sealed class PodMonitorNamespaceSelector
{
    [JsonPropertyName("any")] public bool? Any { get; set; }
    [JsonPropertyName("matchNames")] public List<string>? MatchNames { get; set; }
}

/// <summary>PodMonitor.spec.podMetricsEndpoints[] (subset).</summary>
public sealed class PodMetricsEndpoint
{
    [JsonPropertyName("port")] public string? Port { get; set; }
    [JsonPropertyName("path")] public string? Path { get; set; }
    [JsonPropertyName("interval")] public string? Interval { get; set; }
    [JsonPropertyName("scrapeTimeout")] public string? ScrapeTimeout { get; set; }
}
