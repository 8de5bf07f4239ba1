namespace MoCo.Model.Nn;

/// <summary>How a network computes.</summary>
public enum Precision
{
    /// <summary>Everything in float32.</summary>
    Fp32,

    /// <summary>
    /// bfloat16 compute for convolutions and linear layers (inputs and weights cast on the fly), float32
    /// master weights and gradients, BatchNorm statistics and parameters in float32, loss in float32.
    /// The CPU equivalent of torch.autocast(dtype=torch.bfloat16), which TorchSharp lacks.
    /// </summary>
    Bf16Mixed,
}

/// <summary>Parsing and naming of <see cref="Precision"/> as the command line writes it.</summary>
public static class PrecisionNames
{
    public static Precision Parse(string text) => text.Trim().ToLowerInvariant() switch
    {
        "fp32" or "float32" or "32" => Precision.Fp32,
        "bf16-mixed" or "bf16" or "bf16mixed" => Precision.Bf16Mixed,
        _ => throw new ArgumentException($"unknown precision '{text}': use fp32 or bf16-mixed"),
    };

    public static string Name(this Precision precision) => precision switch
    {
        Precision.Fp32 => "fp32",
        Precision.Bf16Mixed => "bf16-mixed",
        _ => throw new ArgumentOutOfRangeException(nameof(precision)),
    };
}

/// <summary>A module whose compute dtype can be switched; parameters stay float32.</summary>
public interface IMixedPrecision
{
    Precision Precision { get; set; }
}
