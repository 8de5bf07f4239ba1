using System.Text.RegularExpressions;
using k8s;
using k8s.Models;

namespace MoCo.Deploy.Tests;

/// <summary>
/// The Dockerfiles, checked for structure (there is no Docker engine here to build them): stages, what they copy
/// and from where, the publish step, and agreement with the StatefulSet (ports, user) and global.json (SDK).
/// </summary>
public sealed partial class DockerfileTests
{
    [Theory]
    [InlineData("Dockerfile", "cpu")]
    [InlineData("Dockerfile.cuda", "cuda")]
    public void Stages_copy_what_exists_and_publish_with_the_script(string file, string variant)
    {
        var dockerfile = Dockerfile.Parse(Repository.PathOf(file));
        var ignored = File.ReadAllLines(Repository.PathOf(".dockerignore"))
            .Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#')).ToList();
        var stages = new List<string>();
        foreach (var (instruction, arguments, stage) in dockerfile.Instructions)
        {
            switch (instruction)
            {
                case "FROM":
                    var from = Regex.Match(arguments, @"^(\S+)(?:\s+AS\s+(\S+))?$", RegexOptions.IgnoreCase);
                    Assert.True(from.Success, $"{file}: cannot read FROM {arguments}");
                    var image = dockerfile.Resolve(from.Groups[1].Value);
                    Assert.True(stages.Contains(image) || HasTag(image), $"{file}: FROM {image} is neither an earlier stage nor an image with an explicit tag");
                    stages.Add(from.Groups[2].Value);
                    break;
                case "COPY":
                    var parts = arguments.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                    var fromStage = parts.FirstOrDefault(p => p.StartsWith("--from=", StringComparison.Ordinal))?["--from=".Length..];
                    var sources = parts.Where(p => !p.StartsWith("--", StringComparison.Ordinal)).SkipLast(1).ToList();
                    if (fromStage is not null)
                    {
                        Assert.True(stages.Contains(fromStage) || HasTag(dockerfile.Resolve(fromStage)), $"{file}: COPY --from={fromStage} names no earlier stage");
                        continue;
                    }
                    foreach (var source in sources)
                    {
                        Assert.True(File.Exists(Repository.PathOf(source)) || Directory.Exists(Repository.PathOf(source)), $"{file}: COPY {source}: no such file in the repository");
                        var top = source.TrimEnd('/').Split('/')[0];
                        Assert.DoesNotContain(ignored, pattern => pattern.TrimEnd('/') == top || pattern.TrimEnd('/') == source.TrimEnd('/'));
                    }
                    break;
            }
        }
        Assert.Equal(["sdk", "build", "runtime"], stages);
        Assert.Contains(dockerfile.Instructions, i => i is { Instruction: "RUN", Stage: "build" } && i.Arguments == $"build/publish.sh --variant {variant} /out");
        Assert.Contains(dockerfile.Instructions, i => i is { Instruction: "COPY", Stage: "runtime" } && i.Arguments == "--from=build /out /opt/moco");
        Assert.Contains(dockerfile.Instructions, i => i is { Instruction: "ENTRYPOINT" } && i.Arguments == "[\"/opt/moco/moco\"]");
        // the build stage is Debian 12, so the published libLibTorchSharp.so is patched as on a developer's machine
        Assert.StartsWith("debian:12", dockerfile.Resolve("${DEBIAN_IMAGE}"));
        Assert.Contains(dockerfile.Instructions, i => i is { Instruction: "FROM", Stage: "build" } && i.Arguments.StartsWith("${DEBIAN_IMAGE}", StringComparison.Ordinal));
        Assert.True(File.Exists(Repository.PathOf("build", "publish.sh")));
        foreach (var pattern in new[] { "**/bin/", "**/obj/", ".git/" })
        {
            Assert.Contains(pattern, ignored);
        }
    }

    [Theory]
    [InlineData("Dockerfile")]
    [InlineData("Dockerfile.cuda")]
    public void Image_agrees_with_the_statefulset_and_global_json(string file)
    {
        var dockerfile = Dockerfile.Parse(Repository.PathOf(file));
        var exposed = dockerfile.Instructions.Single(i => i.Instruction == "EXPOSE").Arguments.Split(' ').Select(int.Parse).Order().ToList();
        var user = dockerfile.Instructions.Single(i => i.Instruction == "USER").Arguments.Split(':');
        // the trainer and the workers run the same image
        foreach (var manifest in new[] { "trainer.yaml", "worker.yaml" })
        {
            var set = KubernetesYaml.LoadAllFromString(File.ReadAllText(Repository.PathOf("k8s", "base", manifest)), null, strict: true).OfType<V1StatefulSet>().Single();
            var pod = set.Spec.Template.Spec;
            var ports = pod.Containers.Single(c => c.Name == "moco").Ports.Select(p => p.ContainerPort).Order().ToList();
            Assert.Equal(ports, exposed);
            Assert.Equal(pod.SecurityContext.RunAsUser.ToString(), user[0]);
            Assert.Equal(pod.SecurityContext.RunAsGroup.ToString(), user[1]);
        }

        // the SDK image satisfies global.json (same major.minor, feature band and patch at least the pinned one)
        var sdk = Regex.Match(dockerfile.Resolve("${SDK_IMAGE}"), @":(\d+)\.(\d+)\.(\d+)").Groups;
        var pinned = Regex.Match(File.ReadAllText(Repository.PathOf("global.json")), "\"version\":\\s*\"(\\d+)\\.(\\d+)\\.(\\d+)\"").Groups;
        Assert.Equal((pinned[1].Value, pinned[2].Value), (sdk[1].Value, sdk[2].Value));
        Assert.True(int.Parse(sdk[3].Value) >= int.Parse(pinned[3].Value), $"{file}: SDK image {dockerfile.Resolve("${SDK_IMAGE}")} is older than global.json's");
    }

    private static bool HasTag(string image)
    {
        var last = image[(image.LastIndexOf('/') + 1)..];
        var tag = last.Contains(':') ? last[(last.IndexOf(':') + 1)..] : "";
        return image.Contains("@sha256:") || (tag.Length > 0 && tag != "latest");
    }

    /// <summary>A Dockerfile's instructions (continuation lines joined, comments dropped), each with its stage's name.</summary>
    private sealed record Dockerfile(IReadOnlyList<(string Instruction, string Arguments, string Stage)> Instructions, IReadOnlyDictionary<string, string> Args)
    {
        public static Dockerfile Parse(string path)
        {
            var joined = new List<string>();
            var current = "";
            foreach (var raw in File.ReadAllLines(path))
            {
                var line = raw.Trim();
                if (line.StartsWith('#') || (line.Length == 0 && current.Length == 0))
                {
                    continue;
                }
                if (line.EndsWith('\\'))
                {
                    current += line[..^1] + " ";
                    continue;
                }
                joined.Add(Whitespace().Replace(current + line, " ").Trim());
                current = "";
            }
            var instructions = new List<(string, string, string)>();
            var args = new Dictionary<string, string>();
            string stage = "";
            foreach (var line in joined.Where(l => l.Length > 0))
            {
                int space = line.IndexOf(' ');
                var instruction = line[..space].ToUpperInvariant();
                var arguments = line[(space + 1)..];
                if (instruction == "FROM")
                {
                    var m = Regex.Match(arguments, @"\s+AS\s+(\S+)$", RegexOptions.IgnoreCase);
                    stage = m.Success ? m.Groups[1].Value : "";
                }
                if (instruction == "ARG" && stage == "" && arguments.Contains('='))
                {
                    args[arguments[..arguments.IndexOf('=')]] = arguments[(arguments.IndexOf('=') + 1)..];
                }
                instructions.Add((instruction, arguments, stage));
            }
            return new Dockerfile(instructions, args);
        }

        /// <summary>Replaces ${NAME} by the default of a global ARG.</summary>
        public string Resolve(string text) => ArgReference().Replace(text, m => Args.TryGetValue(m.Groups[1].Value, out var v) ? v : m.Value);
    }

    [GeneratedRegex(@"\s+")]
    private static partial Regex Whitespace();

    [GeneratedRegex(@"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")]
    private static partial Regex ArgReference();
}
