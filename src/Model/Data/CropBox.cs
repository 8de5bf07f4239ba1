namespace MoCo.Model.Data;

/// <summary>A crop rectangle in pixels, as torchvision's get_params returns it: (i, j, h, w) = (Top, Left, Height, Width).</summary>
/// <param name="Top">First row (torchvision's i).</param>
/// <param name="Left">First column (torchvision's j).</param>
/// <param name="Height">Number of rows (h).</param>
/// <param name="Width">Number of columns (w).</param>
public readonly record struct CropBox(int Top, int Left, int Height, int Width);
