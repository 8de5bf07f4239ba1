using System.Globalization;
using System.Net;
using System.Net.Sockets;
using MoCo.Host.Metrics;

namespace MoCo.Deploy.Tests;

/// <summary>MocoMetrics recorded and scraped over HTTP from <see cref="PrometheusEndpoint"/>, as Prometheus would.</summary>
public sealed class MetricsEndpointTests
{
    [Fact]
    public async Task Recorded_values_are_scraped_as_prometheus_text()
    {
        int port = FreePort();
        using var metrics = new MocoMetrics(UniqueMeterName());
        using var endpoint = MetricsEndpoint.Start(new MetricsSettings { Port = port }, metrics);
        Assert.NotNull(endpoint);
        metrics.RecordGeneration(generation: 3, worldSize: 4);
        metrics.RecordStep(globalStep: 40, epoch: 2, loss: 1.5, learningRate: 0.06, stepsPerSecond: 4, imagesPerSecond: 512);
        metrics.RecordStep(globalStep: 42, epoch: 2, loss: 1.25, learningRate: 0.03, stepsPerSecond: 4.5, imagesPerSecond: 576, steps: 2);
        metrics.RecordKnn(29.7);
        metrics.RecordQueueAge(MocoMetrics.QueueAgeSteps(queueSize: 1024, keysPerStep: 128));
        metrics.RecordAllReduce(0.0005);
        metrics.RecordAllReduce(0.03);
        metrics.RecordCheckpoint(1.5);

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        var response = await http.GetAsync($"http://127.0.0.1:{port}{MetricsEndpoint.MetricsPath}");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        // Prometheus' text format 0.0.4 (what the exporter answers a scraper that asks for nothing else)
        Assert.Equal("text/plain", response.Content.Headers.ContentType?.MediaType);
        Assert.Contains(response.Content.Headers.ContentType!.Parameters, p => p.Name == "version" && p.Value == "0.0.4");
        var text = await response.Content.ReadAsStringAsync();
        var samples = Parse(text);
        void Expect(string name, double value) =>
            Assert.True(samples.TryGetValue(name, out var v) && Math.Abs(v - value) < 1e-9, $"{name}: expected {value}, scraped {(samples.TryGetValue(name, out var s) ? s : "nothing")}\n{text}");

        Expect("moco_steps_total", 3);
        Expect("moco_global_step", 42);
        Expect("moco_epoch", 2);
        Expect("moco_loss", 1.25);
        Expect("moco_lr", 0.03);
        Expect("moco_step_rate", 4.5);
        Expect("moco_images_per_second", 576);
        Expect("moco_knn_top1_percent", 29.7);
        Expect("moco_generation", 3);
        Expect("moco_world_size", 4);
        Expect("moco_queue_age_steps", 8);
        Expect("moco_allreduce_duration_seconds_count", 2);
        Expect("moco_allreduce_duration_seconds_sum", 0.0305);
        Expect("moco_allreduce_duration_seconds_bucket{le=\"0.001\"}", 1);
        Expect("moco_allreduce_duration_seconds_bucket{le=\"0.05\"}", 2);
        Expect("moco_checkpoint_duration_seconds_count", 1);
        Expect("moco_checkpoint_duration_seconds_bucket{le=\"1\"}", 0);
        Expect("moco_checkpoint_duration_seconds_bucket{le=\"2.5\"}", 1);
        // the types a PodMonitor's recording rules rely on
        Assert.Contains("# TYPE moco_steps_total counter\n", text);
        Assert.Contains("# TYPE moco_loss gauge\n", text);
        Assert.Contains("# TYPE moco_allreduce_duration_seconds histogram\n", text);
        Assert.Contains("moco_allreduce_duration_seconds_bucket{", text);

        // a later record shows in the next scrape
        metrics.RecordGeneration(generation: 4, worldSize: 3);
        samples = Parse(await http.GetStringAsync($"http://127.0.0.1:{port}{MetricsEndpoint.MetricsPath}"));
        Expect("moco_generation", 4);
        Expect("moco_world_size", 3);
    }

    /// <summary>A meter name of its own for one test's <see cref="MocoMetrics"/>.</summary>
    public static string UniqueMeterName() => MocoMetrics.MeterName + ".Test." + Guid.NewGuid().ToString("N");

    [Fact]
    public void Port_zero_serves_nothing_and_a_taken_port_is_named()
    {
        using var metrics = new MocoMetrics(UniqueMeterName());
        Assert.Null(MetricsEndpoint.Start(new MetricsSettings { Port = 0 }, metrics));
        var taken = new TcpListener(IPAddress.Any, 0);
        taken.Start();
        try
        {
            int port = ((IPEndPoint)taken.LocalEndpoint).Port;
            var e = Assert.Throws<MoCo.Host.Configuration.ConfigurationError>(() => MetricsEndpoint.Start(port, metrics));
            Assert.Contains($"port {port}", e.Message);
            Assert.Contains("moco.metrics.port", e.Message);
        }
        finally
        {
            taken.Stop();
        }
        Assert.Throws<ArgumentOutOfRangeException>(() => MetricsEndpoint.Start(70000, metrics));
    }

    [Fact]
    public void Queue_age_is_the_queue_over_the_keys_per_step_rounded_up()
    {
        Assert.Equal(8, MocoMetrics.QueueAgeSteps(1024, 128));
        Assert.Equal(9, MocoMetrics.QueueAgeSteps(1025, 128));
        Assert.Equal(16, MocoMetrics.QueueAgeSteps(4096, 256));
        Assert.Throws<ArgumentOutOfRangeException>(() => MocoMetrics.QueueAgeSteps(1024, 0));
    }

    internal static int FreePort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    /// <summary>Sample lines "name{labels} value" → value, keyed by the name plus any <c>le</c> label; scope labels dropped.</summary>
    private static Dictionary<string, double> Parse(string text)
    {
        var samples = new Dictionary<string, double>();
        foreach (var line in text.Split('\n'))
        {
            if (line.Length == 0 || line[0] == '#')
            {
                continue;
            }
            int space = line.LastIndexOf(' ');
            var series = line[..space];
            var value = double.Parse(line[(space + 1)..], NumberStyles.Float, CultureInfo.InvariantCulture);
            int brace = series.IndexOf('{');
            var name = brace < 0 ? series : series[..brace];
            var le = brace < 0 ? null : series[(brace + 1)..^1].Split(',').FirstOrDefault(l => l.StartsWith("le=", StringComparison.Ordinal));
            samples[le is null ? name : $"{name}{{{le}}}"] = value;
        }
        return samples;
    }
}
