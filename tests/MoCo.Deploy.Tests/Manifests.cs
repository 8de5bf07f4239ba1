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

    /// <summary>The worker StatefulSet.</summary>
    public V1StatefulSet Workers => Named<V1StatefulSet>("moco-worker");

    /// <summary>The worker pods' container running moco.</summary>
    public V1Container WorkerContainer => Workers.Spec.Template.Spec.Containers.Single(c => c.Name == "moco");

    /// <summary>The path <c>--config</c> gives to moco in the worker's arguments.</summary>
    public string ConfigPath
    {
        get
        {
            var args = WorkerContainer.Args ?? [];
            int i = args.IndexOf("--config");
            Assert.True(i >= 0 && i + 1 < args.Count, $"{Name}: the worker's args ({string.Join(' ', args)}) give no --config file");
            return args[i + 1];
        }
    }

    /// <summary>The ConfigMap mounted at the folder of <see cref="ConfigPath"/>.</summary>
    public V1ConfigMap ConfigMapOfConfigPath
    {
        get
        {
            var folder = Path.GetDirectoryName(ConfigPath)!;
            var mount = (WorkerContainer.VolumeMounts ?? []).SingleOrDefault(m => m.MountPath.TrimEnd('/') == folder)
                ?? throw new Xunit.Sdk.XunitException($"{Name}: no volume is mounted at {folder}, the folder of --config {ConfigPath}");
            var volume = Workers.Spec.Template.Spec.Volumes.Single(v => v.Name == mount.Name);
            Assert.True(volume.ConfigMap is not null, $"{Name}: the volume {mount.Name} at {folder} is not a ConfigMap");
            return All<V1ConfigMap>().SingleOrDefault(c => c.Metadata.Name == volume.ConfigMap!.Name)
                ?? throw new Xunit.Sdk.XunitException($"{Name}: the ConfigMap {volume.ConfigMap!.Name} of volume {mount.Name} is not in the render");
        }
    }

    /// <summary>
    /// The configuration the worker reads: the ConfigMap's files written to a folder and parsed by the host's own
    /// <see cref="SettingsReader.ParseFile"/> (which resolves their <c>include</c> lines).
    /// </summary>
    public Config WorkerConfig()
    {
        var folder = Directory.CreateTempSubdirectory("moco-configmap-");
        try
        {
            foreach (var (key, text) in ConfigMapOfConfigPath.Data)
            {
                File.WriteAllText(Path.Combine(folder.FullName, key), text);
            }
            var file = Path.Combine(folder.FullName, Path.GetFileName(ConfigPath));
            Assert.True(File.Exists(file), $"{Name}: --config {ConfigPath} names no key of the ConfigMap (keys: {string.Join(", ", ConfigMapOfConfigPath.Data.Keys)})");
            return SettingsReader.ParseFile(file);
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }

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
