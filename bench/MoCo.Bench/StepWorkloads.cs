namespace MoCo.Bench;

/// <summary>Letters and descriptions of <see cref="StepWorkload"/>.</summary>
internal static class StepWorkloads
{
    /// <summary>Every configuration, in the order of the table.</summary>
    public static IReadOnlyList<StepWorkload> All { get; } =
        [StepWorkload.BareLoop, StepWorkload.MocoFp32, StepWorkload.MocoBf16, StepWorkload.Loader, StepWorkload.Pretrainer];

    /// <summary>The letter of the issue: a to e.</summary>
    public static string Letter(this StepWorkload what) => what switch
    {
        StepWorkload.BareLoop => "a",
        StepWorkload.MocoFp32 => "b",
        StepWorkload.MocoBf16 => "c",
        StepWorkload.Loader => "d",
        StepWorkload.Pretrainer => "e",
        _ => throw new ArgumentOutOfRangeException(nameof(what), what, null),
    };

    /// <summary>A short description for the table.</summary>
    public static string Describe(this StepWorkload what) => what switch
    {
        StepWorkload.BareLoop => "bare loop: encoder_q fwd + CE + bwd + torch SGD",
        StepWorkload.MocoFp32 => "MoCo step, fp32, pre-made views",
        StepWorkload.MocoBf16 => "MoCo step, bf16-mixed, pre-made views",
        StepWorkload.Loader => "loader alone: Build, 2 augmented views",
        StepWorkload.Pretrainer => "Pretrainer.TrainStep: loader + fp32 step",
        _ => throw new ArgumentOutOfRangeException(nameof(what), what, null),
    };

    /// <summary>Parses a letter a to e.</summary>
    /// <exception cref="ArgumentException">The text is not one of the letters.</exception>
    public static StepWorkload Parse(string letter)
    {
        string wanted = letter.Trim().ToLowerInvariant();
        foreach (var what in All)
        {
            if (what.Letter() == wanted)
            {
                return what;
            }
        }
        throw new ArgumentException($"unknown configuration '{letter}': use one of a, b, c, d, e");
    }
}
