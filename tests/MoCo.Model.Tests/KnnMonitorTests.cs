using MoCo.Model.Diagnostics;
using MoCo.Model.Evaluation;
using TorchSharp;
using static TorchSharp.torch;

namespace MoCo.Model.Tests;

public class KnnMonitorTests
{
    [Theory]
    [InlineData("auto", "avx2 fma avx512f avx512_vnni avx512_bf16", null, ScalarType.BFloat16)]
    [InlineData("auto", "avx2 fma avx512f avx512_vnni avx512_bf16", "ALL", ScalarType.BFloat16)]
    [InlineData("auto", "avx2 fma avx512f avx512_vnni avx512_bf16", "AVX512_CORE_BF16", ScalarType.BFloat16)]
    [InlineData("auto", "avx2 fma avx512f avx512_vnni amx_bf16 amx_tile", "AVX512_CORE_AMX", ScalarType.BFloat16)]
    [InlineData("auto", "avx2 fma avx512f avx512_vnni avx512_bf16", "AVX2", ScalarType.Float32)]        // bf16 would be emulated
    [InlineData("auto", "avx2 fma avx512f avx512_vnni avx512_bf16", "AVX512_CORE", ScalarType.Float32)]
    [InlineData("auto", "avx2 fma avx512f avx512_vnni", null, ScalarType.Float32)]                      // no native bf16
    [InlineData("auto", "", null, ScalarType.Float32)]
    [InlineData("fp32", "avx2 fma avx512f avx512_vnni avx512_bf16", null, ScalarType.Float32)]
    [InlineData("bf16", "avx2 fma", "AVX2", ScalarType.BFloat16)]                                      // asked for: given
    public void Knn_precision_auto_is_bf16_only_where_the_cpu_runs_it_natively(string precision, string flags, string? limit, ScalarType expected)
    {
        var cpu = new CpuDescription("test CPU", flags.Split(' ', StringSplitOptions.RemoveEmptyEntries), limit);

        Assert.Equal(expected, KnnMonitor.ComputeFor(precision, DeviceType.CPU, cpu));
        Assert.Equal(precision == "bf16" ? ScalarType.BFloat16 : ScalarType.Float32, KnnMonitor.ComputeFor(precision, DeviceType.CUDA, cpu));
        Assert.Throws<ArgumentException>(() => KnnMonitor.ComputeFor("fp16", DeviceType.CPU, cpu));
    }

    [Theory]
    [InlineData("avx2 fma avx512f avx512_vnni avx512_bf16", null, false)]
    [InlineData("avx2 fma avx512f avx512_vnni amx_bf16 amx_tile", null, false)]
    [InlineData("avx2 fma avx512f avx512_vnni avx512_bf16", "AVX2", true)]   // held below bf16: emulated
    [InlineData("avx2 fma avx512f avx512_vnni", null, true)]
    [InlineData("avx2 fma", null, true)]
    public void Training_in_bf16_mixed_on_a_cpu_that_emulates_bf16_is_warned_about(string flags, string? limit, bool warned)
    {
        var cpu = new CpuDescription("test CPU", flags.Split(' ', StringSplitOptions.RemoveEmptyEntries), limit);

        var warning = cpu.EmulatedBf16Warning(MoCo.Model.Nn.Precision.Bf16Mixed);
        Assert.Equal(warned, warning is not null);
        if (warning is not null)
        {
            Assert.Contains("--precision fp32", warning, StringComparison.Ordinal);
            Assert.Contains("test CPU", warning, StringComparison.Ordinal);
        }
        Assert.Null(cpu.EmulatedBf16Warning(MoCo.Model.Nn.Precision.Fp32));
    }

    [Fact]
    public void Knn_precision_is_a_setting_a_resume_may_change_and_an_unknown_value_is_named()
    {
        var config = new MoCo.Model.Training.RunConfig();
        Assert.Equal("auto", config.KnnPrecision);
        Assert.Contains("knn-precision", MoCo.Model.Training.RunConfig.ChangeableOnResume);
        Assert.True(config.DefinesSameRunAs(config with { KnnPrecision = "fp32" }));
        var e = Assert.Throws<ArgumentException>(() => (config with { KnnPrecision = "fp16" }).Validate());
        Assert.Contains("unknown kNN precision 'fp16'", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Predict_votes_with_the_k_nearest_weighted_by_exp_similarity_over_t()
    {
        // bank on the unit circle: two of class 0 near (1, 0), one of class 1 at (0, 1), one of class 1 at (-1, 0)
        float s = 1f / MathF.Sqrt(0.81f + 0.01f);
        using var bank = tensor(new float[] { 1, 0, 0.9f * s, 0.1f * s, 0, 1, -1, 0 }).view(4, 2);
        using var bankLabels = tensor(new long[] { 0, 0, 1, 1 });
        // (1, 0): both nearest are class 0. (0, 1): exp(1/0.1) for class 1 beats exp(0.11/0.1) for class 0.
        // (0.6, 0.8): nearest are (0, 1) at 0.8 and the second bank row at about 0.62, so class 1 wins; labelled 0, it is a miss.
        using var queries = tensor(new float[] { 1, 0, 0, 1, 0.6f, 0.8f }).view(3, 2);
        using var labels = tensor(new long[] { 0, 1, 0 });
        var knn = new KnnMonitor(k: 2, temperature: 0.1);

        var accuracy = knn.Predict(queries, labels, bank, bankLabels, classes: 2);

        // exact: the counts are integers, so the percentages are exact ratios
        Assert.Equal(3, accuracy.Count);
        Assert.Equal(100.0 * 2 / 3, accuracy.Top1, 12);
        Assert.Equal(100.0, accuracy.Top5, 12);
    }
}
